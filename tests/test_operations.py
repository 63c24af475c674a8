"""./deploy.sh setup, doctor and observe end to end: the real gcloud CLI against stand-ins for the
Google APIs around Cloud Run (tests/fakes/google_project.py), answered through the Cloud Run fake.

One project is set up once (setup --dry-run, setup, setup again), released to once and checked
healthy once; every broken project is a copy of it with a few things broken, put back afterwards.
The release is a real process of the function that loads its model from gs://models/iris/1 on a
real Cloud Storage server (tests/gcs_server.py), and its output is what Cloud Logging holds.
gcloud costs about a second per call, so each broken copy breaks several independent things and
doctor must name each of them, with its fix, and nothing else.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from release.observe import definitions
from release.project import pinned_repository
from tests.conftest import Server
from tests.fakes.cloud_run import FakeCloudRun
from tests.fakes.google_api import ApiError
from tests.fakes.google_project import GoogleProject
from tests.fakes.log_query import field, parse, selects
from tests.fakes.logging_api import LogStore, revision_labels
from tests.fakes.release_env import (
    IMAGE_REPO,
    PROJECT,
    REGION,
    ROOT,
    SERVICE,
    run_release,
)
from tests.gcs_server import StorageServer

pytestmark = pytest.mark.timeout(600)

GITHUB_REPO = "acme/predictor"
BUCKET = "models"
MODEL_URI = f"gs://{BUCKET}/iris/1"
DEPLOYER = f"deployer@{PROJECT}.iam.gserviceaccount.com"
RUNTIME = f"{SERVICE}-runtime@{PROJECT}.iam.gserviceaccount.com"
NUMBER = "123456789012"
PRINCIPAL = (f"principalSet://iam.googleapis.com/projects/{NUMBER}/locations/global/workloadIdentityPools/github/"
             f"attribute.repository/{GITHUB_REPO}")
CONDITION = f"assertion.repository == '{GITHUB_REPO}'"
SETUP_STEPS = 14


class Ops:
    """The Cloud Run fake with the project's other APIs, and ./deploy.sh pointed at them."""

    def __init__(self, fake, world, config_dir):
        self.fake, self.world = fake, world
        self.config_dir = config_dir
        # The fake's access token file (gcloud_env) is a real gcloud credential: with credentials
        # enabled, every call carries it, as with a login.
        self.env = {**world.env(), "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": None, "CLOUDSDK_CORE_DISABLE_FILE_LOGGING": "true",
                    "GITHUB_REPO": GITHUB_REPO, "MODEL_URI": MODEL_URI, "RUN_SERVICE_ACCOUNT": RUNTIME}

    def run(self, *args, **env):
        return run_release(self.fake, self.config_dir, *args, timeout=300, **{**self.env, **env})

    def save(self):
        return self.world.snapshot(), self.fake.snapshot()

    def restore(self, saved):
        world, cloud_run = saved
        self.world.restore(world)
        self.fake.restore(cloud_run)

    def writes(self):
        """Writes the Google API stand-ins took, and writes that reached Cloud Run's own API."""
        return len(self.world.writes()), self.fake.state.mutations("/apis/serving.knative.dev")


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result.stdout


def findings(stdout):
    """doctor's output as [(status, text, fix or None, detail lines)]."""
    out = []
    for line in stdout.splitlines():
        status = line[:6].strip()
        if status in ("OK", "FAIL", "SKIP") and line[4:6] == "  ":
            out.append([status, line[6:], None, []])
        elif line.startswith("      fix: "):
            out[-1][2] = line.removeprefix("      fix: ")
        elif line.startswith("        "):
            out[-1][3].append(line.strip())
    return out


def function_lines(uri, log_path):
    """The JSON lines (text) the real function prints for a readiness check and one prediction."""
    server = Server({"MODEL_URI": uri, "MODEL_CACHE_DIR": log_path.parent / "cache"}, log_path)
    try:
        server.wait_until_listening()
        request = urllib.request.Request(server.url + "/predict", data=b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
                                         headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=30).close()
        except urllib.error.HTTPError:
            pass  # a server without a model answers 503, and logs why
    finally:
        server.stop()
    return [line for line in log_path.read_text().splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def broken_lines(tmp_path_factory):
    """The log lines of the function when its model is missing."""
    tmp = tmp_path_factory.mktemp("function-logs")
    (tmp / "empty").mkdir()
    return function_lines(tmp / "empty", tmp / "broken.log")


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    """A Cloud Storage server holding the default model at MODEL_URI, as `python -m model publish` puts it."""
    server = StorageServer(tmp_path_factory.mktemp("gcs-data"), buckets=(BUCKET,)).start()
    try:
        subprocess.run([sys.executable, "-m", "model", "publish", MODEL_URI, "--model-dir",
                        str(ROOT / "model" / "artifacts")], cwd=ROOT, check=True, capture_output=True, timeout=120,
                       env={**os.environ, "STORAGE_EMULATOR_HOST": server.url})
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def ops(gcloud_config, storage):
    # Cloud Storage is reached as on Cloud Run, by the revisions themselves: here that is the server above.
    fake = FakeCloudRun(platform_env={"STORAGE_EMULATOR_HOST": storage.url}).start()
    try:
        world = GoogleProject(PROJECT, NUMBER, REGION).install(fake)
        world.storage.add_bucket(BUCKET)
        yield Ops(fake, world, gcloud_config)
    finally:
        fake.stop()


def _predict_and_wait_for_its_line(fake, url, revision):
    """One prediction through `url`, then until the revision's request line for it is in Cloud Logging."""
    request = urllib.request.Request(url + "/predict", data=b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()
    wanted = (f'resource.labels.revision_name="{revision}" AND jsonPayload.logger="request" AND '
              'jsonPayload.rows>0')
    deadline = time.monotonic() + 10
    while not fake.logs.matching(wanted):
        assert time.monotonic() < deadline, "the prediction's request line never reached Cloud Logging"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def released(ops):
    """A new project after setup --dry-run, setup and setup again, then v1.0.0 released and asked for
    one prediction: the runs and the healthy state (to put back before each test)."""
    runs = {"dry run": ops.run("setup", "--dry-run"), "dry run writes": ops.writes()}
    runs["setup"] = ops.run("setup")
    runs["setup writes"] = ops.writes()
    runs["again"] = ops.run("setup")
    runs["again writes"] = ops.writes()
    ops.world.registry.push(f"{IMAGE_REPO}:v1.0.0")
    ok(ops.run("deploy", "v1.0.0"))
    revision = ops.fake.state.tags(SERVICE)["v1-0-0"]
    _predict_and_wait_for_its_line(ops.fake, ops.fake.state.url_for(SERVICE, "v1-0-0"), revision)
    runs["healthy"] = ops.save()
    runs["logs"] = ops.fake.logs.snapshot()
    return runs


@pytest.fixture
def healthy(ops, released):
    """The released project as it was, whatever the last test broke."""
    ops.restore(released["healthy"])
    return ops


def test_setup_dry_run_prints_every_step_and_changes_nothing(released):
    out = ok(released["dry run"])
    assert released["dry run writes"] == (0, 0)
    assert f"would run {SETUP_STEPS} of {SETUP_STEPS} steps" in out
    assert (f"$ gcloud iam workload-identity-pools providers create-oidc github --workload-identity-pool=github "
            f"--location=global --issuer-uri=https://token.actions.githubusercontent.com "
            f"--attribute-mapping=google.subject=assertion.sub,attribute.repository=assertion.repository "
            f'"--attribute-condition={CONDITION}"') in out
    assert "gh variable set" not in out


def test_setup_creates_the_one_time_set_up(healthy, released):
    out = ok(released["setup"])
    world = healthy.world
    assert released["setup writes"][0] == SETUP_STEPS
    assert f"ran {SETUP_STEPS} of {SETUP_STEPS} steps" in out
    assert {"run.googleapis.com", "artifactregistry.googleapis.com", "iam.googleapis.com", "sts.googleapis.com",
            "iamcredentials.googleapis.com"} <= world.service_usage.state["enabled"]
    assert world.registry.state["repos"][(REGION, "releases")]["repo"]["format"] == "DOCKER"
    provider = world.iam.state["pools"]["github"]["providers"]["github"]
    assert provider["attributeCondition"] == CONDITION
    assert provider["attributeMapping"]["attribute.repository"] == "assertion.repository"
    accounts = world.iam.state["accounts"]
    assert set(accounts) == {DEPLOYER, RUNTIME}
    assert accounts[DEPLOYER]["policy"].members("roles/iam.workloadIdentityUser") == {PRINCIPAL}
    assert accounts[RUNTIME]["policy"].members("roles/iam.serviceAccountUser") == {f"serviceAccount:{DEPLOYER}"}
    project_policy = world.resource_manager.state["policy"]
    for role in ("roles/run.developer", "roles/run.invoker", "roles/logging.viewer", "roles/monitoring.viewer"):
        assert project_policy.members(role) == {f"serviceAccount:{DEPLOYER}"}
    repo_policy = world.registry.state["repos"][(REGION, "releases")]["policy"]
    assert repo_policy.members("roles/artifactregistry.writer") == {f"serviceAccount:{DEPLOYER}"}
    assert world.storage.state["buckets"][BUCKET].members("roles/storage.objectViewer") == {f"serviceAccount:{RUNTIME}"}
    wif = f"projects/{NUMBER}/locations/global/workloadIdentityPools/github/providers/github"
    assert f"gh variable set WIF_PROVIDER --repo {GITHUB_REPO} --body {wif}" in out


def test_setup_again_finds_everything_in_place_and_changes_nothing(released):
    out = ok(released["again"])
    assert released["again writes"] == released["setup writes"]
    assert f"ran 0 of {SETUP_STEPS} steps; {SETUP_STEPS} were in place" in out
    assert out.count("\n  ok ") == SETUP_STEPS


def test_doctor_passes_on_the_set_up_project_and_only_reads(healthy):
    before = healthy.writes()
    result = healthy.run("doctor", "v1.0.0")
    out = ok(result)
    assert healthy.writes() == before
    statuses = [status for status, *_ in findings(out)]
    assert statuses and set(statuses) == {"OK"}, out
    assert len(statuses) == SETUP_STEPS + 7  # login, project, image, service, revisions, runs-as, logs
    assert out.rstrip().endswith("All checks passed.")


def _identity(ops, broken_lines=None):
    """Another repository in the provider's condition, no run.developer, STS off."""
    ops.world.iam.state["pools"]["github"]["providers"]["github"]["attributeCondition"] = \
        "assertion.repository == 'acme/other'"
    ops.world.resource_manager.state["policy"].bindings = [
        b for b in ops.world.resource_manager.state["policy"].bindings if b["role"] != "roles/run.developer"]
    ops.world.service_usage.state["enabled"].discard("sts.googleapis.com")
    return ()


def _registry(ops, broken_lines=None):
    """The repository is gone, with the image the service runs."""
    del ops.world.registry.state["repos"][(REGION, "releases")]
    return ()


def _release(ops, broken_lines=None):
    """v1.1.0 deployed from an image never pushed: its revision cannot start."""
    ok(ops.run("deploy", "v1.1.0"))
    revision = ops.fake.state.tags(SERVICE)["v1-1-0"]
    message = f"Image '{IMAGE_REPO}:v1.1.0' not found."
    with ops.fake.state.lock:
        ops.fake.state.revisions[revision]["status"]["conditions"] = [
            {"type": "Ready", "status": "False", "reason": "ContainerMissing", "message": message}]
        ops.fake.state.services[SERVICE]["status"]["conditions"] = [
            {"type": "Ready", "status": "False", "reason": "RevisionFailed",
             "message": f"Revision '{revision}' is not ready and cannot serve traffic. {message}"}]
    return ("v1.1.0",)


def _runtime(ops, broken_lines):
    """The runtime account cannot read the bucket, the service runs as the default account, and the
    model failed to load (the lines the real function prints when it finds no model, as the revision's)."""
    ops.world.storage.state["buckets"][BUCKET].bindings = []
    with ops.fake.state.lock:
        del ops.fake.state.services[SERVICE]["spec"]["template"]["spec"]["serviceAccountName"]
    revision = ops.fake.state.tags(SERVICE)["v1-0-0"]
    for line in broken_lines:
        ops.fake.logs.write_line(line, revision_labels(PROJECT, SERVICE, revision, REGION))
    return ()


def _shown(*args):
    return " ".join(["gcloud", *args, f"--project={PROJECT}"])


BROKEN = {
    "roles and identity": (_identity, [
        ("not enabled: sts.googleapis.com", _shown("services", "enable", "sts.googleapis.com")),
        ("its condition is \"assertion.repository == 'acme/other'\", not \"" + CONDITION + '"',
         "gcloud iam workload-identity-pools providers update-oidc github --workload-identity-pool=github "
         "--location=global --issuer-uri=https://token.actions.githubusercontent.com"),
        (f"serviceAccount:{DEPLOYER} lacks roles/run.developer",
         _shown("projects", "add-iam-policy-binding", PROJECT, "--role=roles/run.developer",
                f"--member=serviceAccount:{DEPLOYER}")),
    ]),
    "registry": (_registry, [
        ("Artifact Registry repository releases (europe-west1, docker): missing",
         _shown("artifacts", "repositories", "create", "releases", "--repository-format=docker",
                f"--location={REGION}")),
        (f"image {IMAGE_REPO}:v1.0.0 is not in the registry", "./deploy.sh rollback vX.Y.Z"),
        (f"serviceAccount:{DEPLOYER} lacks roles/artifactregistry.writer",
         _shown("artifacts", "repositories", "add-iam-policy-binding", "releases", f"--location={REGION}",
                "--role=roles/artifactregistry.writer", f"--member=serviceAccount:{DEPLOYER}")),
    ]),
    "release": (_release, [
        (f"image {IMAGE_REPO}:v1.1.0 is not in the registry", f"docker build -t {IMAGE_REPO}:v1.1.0 ."),
        (f"service {SERVICE} is not ready: Revision '", "./deploy.sh rollback"),
        (f"(v1.1.0, 0% traffic) is not ready: Image '{IMAGE_REPO}:v1.1.0' not found.", "read its logs: gcloud logging "
         "read 'resource.labels.revision_name=\""),
    ]),
    "runtime": (_runtime, [
        (f"{RUNTIME} may read the model in gs://{BUCKET} (roles/storage.objectViewer): serviceAccount:{RUNTIME} "
         "lacks roles/storage.objectViewer",
         _shown("storage", "buckets", "add-iam-policy-binding", f"gs://{BUCKET}", "--role=roles/storage.objectViewer",
                f"--member=serviceAccount:{RUNTIME}")),
        (f"service {SERVICE} runs as Cloud Run's default", f"RUN_SERVICE_ACCOUNT={RUNTIME} ./deploy.sh deploy vX.Y.Z"),
        ("model_load_failed log line(s) in the last 1d", "publish the model there (python -m model publish"),
    ]),
}


@pytest.mark.parametrize("name", BROKEN)
def test_doctor_names_each_problem_and_its_fix_and_only_reads(healthy, broken_lines, name):
    breaks, expected = BROKEN[name]
    args = breaks(healthy, broken_lines)
    before = healthy.writes()

    result = healthy.run("doctor", *args)

    assert result.returncode == 1, result.stdout + result.stderr
    assert healthy.writes() == before
    failed = [(text, fix, details) for status, text, fix, details in findings(result.stdout) if status == "FAIL"]
    for problem, fix in expected:
        matching = [(text, found_fix) for text, found_fix, _ in failed if problem in text]
        assert matching, f"no FAIL naming {problem!r} in:\n{result.stdout}"
        assert fix in (matching[0][1] or ""), f"fix for {problem!r}: {matching[0][1]!r}"
    assert len(failed) == len(expected), result.stdout  # and nothing else is reported broken
    assert f"{len(expected)} problem(s)." in result.stdout
    if name == "runtime":  # one detail line per line the function printed
        printed = [line for line in map(json.loads, broken_lines) if line.get("event") == "model_load_failed"]
        details = [d for text, _, ds in failed if "model_load_failed" in text for d in ds]
        assert printed and len(details) == len(printed)
        assert all("MODEL_NOT_FOUND: model load failed:" in detail for detail in details)


@pytest.mark.parametrize(("env", "message"), [
    ({"CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": None}, "gcloud is not logged in"),
    ({"PROJECT_ID": "no-such-project", "RUN_SERVICE_ACCOUNT": None}, "project no-such-project cannot be read"),
])
def test_doctor_stops_at_a_missing_login_or_project(healthy, env, message):
    result = healthy.run("doctor", **env)
    assert result.returncode == 1
    failed = [(text, fix) for status, text, fix, _ in findings(result.stdout) if status == "FAIL"]
    assert len(failed) == 1 and message in failed[0][0] and failed[0][1], result.stdout


def test_setup_repairs_only_what_is_broken(healthy):
    world = healthy.world
    _identity(healthy)
    world.iam.state["pools"]["github"]["pool"]["state"] = "DELETED"
    world.iam.state["accounts"][DEPLOYER]["account"]["disabled"] = True
    before = len(world.writes())

    out = ok(healthy.run("setup"))

    done = world.writes()[before:]
    assert [method for method, _ in done] == ["POST", "POST", "PATCH", "POST", "POST"], done
    assert [path.rsplit("/", 1)[-1] for _, path in done] == [
        "sts.googleapis.com:enable", "github:undelete", "github", f"{DEPLOYER}:enable", f"{PROJECT}:setIamPolicy"]
    assert f"ran 5 of {SETUP_STEPS} steps; {SETUP_STEPS - 5} were in place" in out
    assert "sts.googleapis.com" in world.service_usage.state["enabled"]
    assert world.iam.state["pools"]["github"]["pool"]["state"] == "ACTIVE"
    assert world.iam.state["pools"]["github"]["providers"]["github"]["attributeCondition"] == CONDITION
    assert not world.iam.state["accounts"][DEPLOYER]["account"].get("disabled")
    assert world.resource_manager.state["policy"].members("roles/run.developer") == {f"serviceAccount:{DEPLOYER}"}


@pytest.mark.parametrize(("command", "env", "message"), [
    ("setup", {"GITHUB_REPO": None}, "missing env var GITHUB_REPO"),
    ("setup", {"GITHUB_REPO": "acme"}, "must be owner/name"),
    ("setup", {"REPO": "Releases"}, "not a valid repository id"),
    ("setup", {"RUN_SERVICE_ACCOUNT": "runner@elsewhere.iam.gserviceaccount.com"}, "must be an account of demo-project"),
    ("setup", {"SERVICE": "a-service-name-long-enough-to-overflow", "RUN_SERVICE_ACCOUNT": None},
     "is not a valid account id"),
    ("doctor", {"PROJECT_ID": None}, "missing env var PROJECT_ID"),
    ("observe", {"NOTIFICATION_CHANNELS": "pager"}, "is not projects/PROJECT/notificationChannels/ID"),
])
def test_bad_settings_exit_2_with_one_line_before_any_call(ops, command, env, message):
    seen = len(ops.fake.state.requests)
    result = ops.run(command, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert len(ops.fake.state.requests) == seen


def test_observe_creates_once_then_changes_nothing_then_puts_back_only_what_drifted(healthy):
    world = healthy.world
    before = len(world.writes())

    first = ok(healthy.run("observe"))

    metrics = world.log_metrics.state["metrics"]
    assert len(metrics) == 10 and f"{SERVICE}_model_load_failures" in metrics
    assert metrics[f"{SERVICE}_batch_rows"]["valueExtractor"] == "EXTRACT(jsonPayload.batch_rows)"
    (dashboard,) = world.monitoring.state["dashboards"].values()
    assert dashboard["displayName"] == f"{SERVICE} on Cloud Run"
    policies = {p["displayName"]: p for p in world.monitoring.state["policies"].values()}
    assert len(policies) == 4
    assert all(f'service_name="{SERVICE}"' in p["conditions"][0]["conditionPrometheusQueryLanguage"]["query"]
               for p in policies.values())
    assert "wrote 15 of 15" in first and len(world.writes()) - before == 15

    writes = len(world.writes())
    assert "wrote 0 of 15; 15 were up to date" in ok(healthy.run("observe"))
    assert len(world.writes()) == writes

    del metrics[f"{SERVICE}_queued_ms"]
    dashboard["mosaicLayout"]["tiles"][1]["widget"]["title"] = "renamed by hand"
    fast = next(p for name, p in policies.items() if "fast burn" in name)
    fast["conditions"][0]["conditionPrometheusQueryLanguage"]["query"] += " * 2"
    fast_id = fast["name"].rsplit("/", 1)[-1]

    third = ok(healthy.run("observe"))

    assert "wrote 3 of 15; 12 were up to date" in third
    assert sorted(method for method, _ in world.writes()[writes:]) == ["PATCH", "PATCH", "POST"]
    assert f"{SERVICE}_queued_ms" in world.log_metrics.state["metrics"]
    (dashboard,) = world.monitoring.state["dashboards"].values()
    assert dashboard["mosaicLayout"]["tiles"][1]["widget"]["title"] != "renamed by hand"
    assert not world.monitoring.state["policies"][fast_id]["conditions"][0][
        "conditionPrometheusQueryLanguage"]["query"].endswith("* 2")


def test_help_names_the_operations_commands_and_settings():
    text = subprocess.run([str(ROOT / "deploy.sh"), "help"], capture_output=True, text=True, check=True).stdout
    for word in ("doctor [vX.Y.Z]", "setup [--dry-run]", "observe [--dry-run]", "GITHUB_REPO", "REPO",
                 "DEPLOY_SERVICE_ACCOUNT", "MODEL_BUCKET", "NOTIFICATION_CHANNELS"):
        assert word in text, word


def test_log_metrics_select_the_lines_the_function_prints(released, broken_lines):
    """Each log-based metric's filter and extractors, run over the Cloud Logging entries of the released
    revision (its start, probes and one prediction) and of the function's lines when its model is missing."""
    metrics = {m["name"].removeprefix(f"{SERVICE}_"): m for m in definitions(SERVICE)[0]}
    healthy = released["logs"]
    failed = [LogStore(PROJECT).entry(line, revision_labels(PROJECT, SERVICE, "r2", REGION)) for line in broken_lines]
    predicted = [e for e in healthy if e.get("jsonPayload", {}).get("logger") == "request"
                 and e["jsonPayload"].get("rows", 0) > 0]
    loaded = [e for e in healthy if e.get("jsonPayload", {}).get("event") == "model_loaded"]
    assert len(predicted) == 1 and len(loaded) == 1, healthy
    expected = {"request_rows": predicted, "batch_rows": predicted, "queued_ms": predicted,
                "model_load_failures": [e for e in failed if e["jsonPayload"].get("event") == "model_load_failed"]}
    expected.update({f"startup_{stage}_s": loaded for stage in
                     ("total", "import", "fetch", "verify", "load", "first_prediction")})
    assert set(expected) == set(metrics)
    for name, metric in metrics.items():
        chosen = [entry for entry in healthy + failed if selects(metric["filter"], entry)]
        assert chosen == expected[name] and chosen, name
        if "valueExtractor" in metric:
            path = metric["valueExtractor"].removeprefix("EXTRACT(").removesuffix(")")
            assert all(isinstance(field(entry, path), (int, float)) for entry in chosen), name
    assert field(loaded[0], "jsonPayload.startup.fetch_s") > 0  # the model really came from Cloud Storage
    reason = metrics["model_load_failures"]["labelExtractors"]["reason"].removeprefix("EXTRACT(").removesuffix(")")
    assert {field(entry, reason) for entry in expected["model_load_failures"]} == {"MODEL_NOT_FOUND"}


LINE = ('{"severity": "WARNING", "message": "POST /predict 200", "time": "2026-01-05T10:00:00.5+00:00", '
        '"logger": "request", "rows": 10, "queued_ms": 0.0, "cached": false, "logging.googleapis.com/trace": "t1"}')


@pytest.mark.parametrize(("query", "selected"), [
    ('resource.type="cloud_run_revision" AND resource.labels.service_name="predictor"', True),
    ("resource.type=cloud_run_revision resource.labels.revision_name=r1", True),  # bare words, AND implied
    ('resource.labels."revision_name"="r1"', True),
    ("jsonPayload.rows>9", True),
    ("jsonPayload.rows>10", False),  # numbers compare as numbers, not text ("10" < "9")
    ("jsonPayload.queued_ms>=0 AND jsonPayload.cached=false", True),
    ("severity>=WARNING AND severity<ERROR", True),
    ("severity>=error", False),
    ('timestamp>="2026-01-05T09:59:59Z" AND timestamp<"2026-01-05T11:00:00+01:00"', False),
    ('timestamp>="2026-01-05T10:00:00.4Z"', True),
    ('(jsonPayload.message:"predict" AND trace="t1")', True),
    ("jsonPayload.batch_rows:*", False),
    ("jsonPayload.batch_rows!=3", True),
    ("jsonPayload.rows>100 OR NOT severity=INFO", True),
    ("jsonPayload.rows>100 AND jsonPayload.rows<200 OR severity=WARNING", False),  # OR binds tighter than AND
])
def test_log_queries_select_as_cloud_logging_does(query, selected):
    entry = LogStore(PROJECT).entry(LINE, revision_labels(PROJECT, SERVICE, "r1", REGION))
    assert entry["severity"] == "WARNING" and entry["trace"] == "t1" and "severity" not in entry["jsonPayload"]
    assert selects(query, entry) is selected


@pytest.mark.parametrize("query", ["predict", "jsonPayload.rows>", '(severity=INFO', "severity>=LOUD",
                                   'timestamp>"yesterday"', "jsonPayload.rows>1 AND"])
def test_log_queries_it_cannot_read_are_refused_with_400(query):
    with pytest.raises(ApiError) as refused:
        parse(query)
    assert refused.value.code == 400


@pytest.mark.parametrize(("condition", "pinned"), [
    (CONDITION, GITHUB_REPO),
    (f"{CONDITION} && assertion.ref == 'refs/heads/main'", GITHUB_REPO),  # narrower still: kept as it is
    (f"({CONDITION}) && assertion.workflow == 'Release'", GITHUB_REPO),
    (f"{CONDITION} || assertion.repository_owner == 'acme'", None),
    ("assertion.repository_owner == 'acme'", None),
    (f"{CONDITION} && assertion.repository == 'acme/other'", None),
    ("", None),
])
def test_a_provider_condition_must_require_one_repository(condition, pinned):
    assert pinned_repository(condition) == pinned

"""RUNBOOK.md's quotes are what the system prints: each failure is caused for real and its output read.

A checked quote in the runbook is a ```text block right after `<!-- drill: NAME -->`; inside it `…`
stands for what changes from run to run (revision names, times, hashes, ports), everything else is
literal. Each line of the quote must be found, in order, in a line of what drill NAME made the system
print. DRILLS causes each failure: the real function (its ASGI app in-process, or its server process),
a real Cloud Storage server that is emptied, rotted, denied or not there, models built wrong on
purpose, scripts/setup.sh and scripts/image.sh on a host without what they need, and ./deploy.sh with
the real gcloud CLI against the stand-ins of tests/fakes (one project, set up by `setup`, released to,
then broken). A drill in the runbook without a function, or a function without its quote, fails too,
so the runbook changes when the messages do.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import BIN, IRIS_ROW, REPO, joblib_copy
from tests.fakes.cloud_run import FakeCloudRun
from tests.fakes.google_project import GoogleProject
from tests.fakes.release_env import IMAGE_REPO, PROJECT, REGION, SERVICE, Load, run_release
from tests.gcs_server import StorageServer
from tests.net import free_port

pytestmark = pytest.mark.timeout(300)

RUNBOOK = REPO / "RUNBOOK.md"
_QUOTE = re.compile(r"<!-- drill: ([a-z0-9-]+) -->\n```text\n(.*?)\n```", re.S)
WILDCARD = "…"

# The released project: as tests/test_operations.py sets it up.
GITHUB_REPO = "acme/predictor"
NUMBER = "123456789012"
RUNTIME = f"{SERVICE}-runtime@{PROJECT}.iam.gserviceaccount.com"
MODEL_URI = "gs://models/iris/1"
# Load failures answer at once and are tried again soon after, as tests/test_gcs.py does.
FAST = {"MODEL_WARMUP": "false", "MODEL_FETCH_TIMEOUT_S": "2", "MODEL_RETRY_BACKOFF_S": "0.2",
        "MODEL_RETRY_BACKOFF_MAX_S": "0.5"}


def runbook_quotes() -> dict[str, str]:
    text = RUNBOOK.read_text()
    quotes = {}
    for name, quote in _QUOTE.findall(text):
        assert name not in quotes, f"drill {name} is quoted twice"
        quotes[name] = quote
    return quotes


def found_in_order(quote: str, output: str) -> str | None:
    """None when every line of `quote` matches (`…` as a wildcard) inside a line of `output`, in order;
    else the first quote line that does not."""
    lines = output.splitlines()
    at = 0
    for wanted in filter(None, quote.splitlines()):
        pattern = re.compile(".*?".join(map(re.escape, wanted.split(WILDCARD))))
        while at < len(lines) and not pattern.search(lines[at]):
            at += 1
        if at == len(lines):
            return wanted
        at += 1
    return None


# -- the function in-process: its JSON answers and its log lines -------------------------------------

def _answer_and_log(request, calls, **env):
    """The function's answers to `calls` [(method, path, kwargs)], then every line it logged meanwhile."""
    capsys = request.getfixturevalue("capsys")
    client = request.getfixturevalue("make_client")(**env)
    capsys.readouterr()
    answers = [client.open(path, method, **kwargs).text for method, path, kwargs in calls]
    return "\n".join(answers) + "\n" + capsys.readouterr().out


def _predict(request, **env):
    return _answer_and_log(request, [("POST", "/predict", {"json": {"features": IRIS_ROW}})], **env)


def _published(request, prefix):
    """A gs:// URI holding the default model, published to the module's storage server."""
    from model import publish

    request.getfixturevalue("storage")
    uri = f"gs://models/{prefix}"
    publish.publish(request.getfixturevalue("trained")("logreg"), uri)
    return uri


def drill_load_missing(request):
    request.getfixturevalue("storage")
    return _predict(request, MODEL_URI="gs://models/never-published", **FAST)


def drill_load_corrupt(request):
    uri = _published(request, "rotten")
    storage = request.getfixturevalue("storage")
    size = (request.getfixturevalue("trained")("logreg") / "model.skops").stat().st_size
    storage.rot("models", "rotten/model.skops", b"\0" * size)
    return _predict(request, MODEL_URI=uri, **FAST)


def drill_load_sha256(request):
    """An artifact uploaded beside a manifest that expects other bytes (as tests/test_gcs.py makes one)."""
    from google.cloud import storage as gcs

    request.getfixturevalue("storage")
    model_dir = request.getfixturevalue("trained")("logreg")
    bucket = gcs.Client(project="test").bucket("models")
    bucket.blob("mismatch/model.skops").upload_from_filename(model_dir / "model.skops")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["artifact"]["sha256"] = "f" * 64
    bucket.blob("mismatch/manifest.json").upload_from_string(json.dumps(manifest))
    return _predict(request, MODEL_URI="gs://models/mismatch", **FAST)


def drill_load_denied(request):
    uri = _published(request, "denied")
    storage = request.getfixturevalue("storage")
    storage.deny()
    try:
        return _predict(request, MODEL_URI=uri, **FAST)
    finally:
        storage.mend()


def drill_load_unreachable(request):
    from model import gcs_client

    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    gcs_client.reset_client()
    try:
        return _predict(request, MODEL_URI="gs://models/iris", **FAST)
    finally:
        gcs_client.reset_client()


def _log1p(x):
    import numpy

    return numpy.log1p(x)


def drill_load_untrusted(request):
    """A skops artifact that would build a function of its author's: outside the trusted types."""
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.preprocessing import FunctionTransformer

    from model import manifest

    out = request.getfixturevalue("tmp_path") / "untrusted"
    out.mkdir()
    estimator = FunctionTransformer(func=_log1p).fit(load_iris().data)
    skops.io.dump(estimator, out / "model.skops")
    manifest.write(manifest.build(name="custom", version="1", estimator=estimator, features=load_iris().feature_names,
                                  classes=None, task="regression", artifact=out / "model.skops"), out)
    return _predict(request, MODEL_URI=out, **FAST)


def drill_load_pickle(request):
    out = request.getfixturevalue("tmp_path") / "vertex"
    out.mkdir()
    joblib_copy(request.getfixturevalue("trained")("logreg"), out / "model.joblib")
    return _predict(request, MODEL_URI=out, **FAST)


def drill_load_version(request):
    model_dir = request.getfixturevalue("model_dir")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["framework"]["scikit-learn"] = "1.5.2"
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    return _predict(request, MODEL_URI=model_dir, **FAST)


def drill_cold_start(request):
    return _predict(request, MODEL_URI=request.getfixturevalue("trained")("logreg"), MODEL_WARMUP="false")


def _serving(request, calls, **env):
    return _answer_and_log(request, calls, MODEL_URI=request.getfixturevalue("trained")("logreg"), **env)


def drill_http_400(request):
    return _serving(request, [("POST", "/predict", {"json": {"features": [5.1, 3.5, 1.4]}})])


def drill_http_400_columns(request):
    """A model users bring: a DataFrame pipeline with named, typed columns, packaged as they would."""
    from model import package
    from tests import models

    tmp = request.getfixturevalue("tmp_path")
    fitted = models.churn_pipeline()
    source = models.dump(fitted, tmp / "source", name="churn")
    package.package(source, tmp / "churn", sample=models.write_sample(fitted, tmp / "churn.jsonl"), allow_pickle=True)
    row = {"tenure_months": 3, "monthly_charges": 80.5, "contract": "month-to-month", "payment": "card",
           "senior": False}
    return _answer_and_log(request, [("POST", "/predict", {"json": {"instances": [{**row, "tenure_months": "three"}]}}),
                                     ("POST", "/predict", {"json": {"instances": [{**row, "contract": None}]}}),
                                     ("POST", "/predict", {"json": {"instances": [{**row, "contract": "weekly"}]}})],
                           MODEL_URI=tmp / "churn")


def drill_http_404(request):
    return _serving(request, [("GET", "/v1/predict", {}),
                              ("POST", "/v1/models/flowers:predict", {"json": {"instances": [IRIS_ROW]}})])


def drill_http_405(request):
    return _serving(request, [("GET", "/predict", {})])


def drill_http_413(request):
    return _serving(request, [("POST", "/predict", {"json": {"instances": [IRIS_ROW] * 100}})], MAX_BODY_BYTES="1024")


def drill_http_415(request):
    return _serving(request, [("POST", "/predict", {"data": "5.1,3.5,1.4,0.2", "content_type": "text/csv"})])


def drill_http_500(request):
    """A bug: the model call raises something no check foresaw."""
    from inference import predictor

    def broken(self, rows, proba):
        raise RuntimeError("a bug in the model call")

    request.getfixturevalue("monkeypatch").setattr(predictor.Predictor, "_predict", broken)
    return _serving(request, [("POST", "/predict", {"json": {"features": IRIS_ROW}})])


# -- scripts on a host that lacks what they need ----------------------------------------------------

def _tools_dir(tmp_path, *names):
    """A directory of links to just these commands, to be the whole PATH of a script."""
    tools = tmp_path / "bin"
    tools.mkdir(exist_ok=True)
    for name in names:
        (tools / name).symlink_to(shutil.which(name))
    return tools


def _output(result):
    return result.stdout + result.stderr


def drill_setup_gcloud_missing(request):
    result = subprocess.run(["scripts/setup.sh", "test"], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "GCLOUD": "gcloud-not-installed"}, check=False)
    assert result.returncode == 1
    return _output(result)


def drill_secret_committed(request):
    from tests import secret_scan

    tree = request.getfixturevalue("tmp_path") / "checkout"
    tree.mkdir()
    (tree / "deploy.env").write_text("GITHUB_TOKEN=ghp_" + "x7" * 18 + "\n")  # shaped like a token, made here
    return "\n".join(secret_scan.scan_tree(tree))


def drill_image_no_engine(request):
    tools = _tools_dir(request.getfixturevalue("tmp_path"), "bash", "dirname", "date", "env")
    result = subprocess.run(["bash", "scripts/image.sh"], cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={"PATH": str(tools), "HOME": os.environ.get("HOME", "/root")}, check=False)
    assert result.returncode != 0
    return _output(result)


def drill_image_smoke_fails(request):
    """The build's last step runs the real server with the model it baked; here there is none."""
    tmp = request.getfixturevalue("tmp_path")
    (tmp / "no-model").mkdir()
    (tmp / "site").mkdir()
    # The step writes bytecode as it imports; here it goes to tmp_path, not into the shared virtualenv.
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "MODEL_URI": str(tmp / "no-model"),
           "MODEL_CACHE_DIR": str(tmp / "cache"), "PYTHONPYCACHEPREFIX": str(tmp / "pycache")}
    # The rows it predicts are the built-in model's examples; the image's path is not on this host.
    (tmp / "examples.jsonl").write_text('[5.1, 3.5, 1.4, 0.2]\n' * 2)
    result = subprocess.run([sys.executable, "scripts/container/warm_bytecode.py", "--port", str(free_port()),
                             "--examples", str(tmp / "examples.jsonl"), str(tmp / "site")], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    return _output(result)


# -- ./deploy.sh against one project, set up, released to, then broken ---------------------------------

class Project:
    """The Cloud Run stand-in with the project's other APIs, after `setup` and releases v1.0.0 (serving)
    and v1.1.0 (no traffic) of the default model from gs://models/iris/1 on a real storage server."""

    def __init__(self, fake, world, config_dir):
        self.fake, self.world, self.config_dir = fake, world, config_dir
        self.env = {**world.env(), "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": None,
                    "CLOUDSDK_CORE_DISABLE_FILE_LOGGING": "true", "GITHUB_REPO": GITHUB_REPO,
                    "MODEL_URI": MODEL_URI, "RUN_SERVICE_ACCOUNT": RUNTIME}
        self.outputs = {}

    def run(self, *args, **env):
        return run_release(self.fake, self.config_dir, *args, timeout=300, **{**self.env, **env})

    def ok(self, *args, **env):
        result = self.run(*args, **env)
        assert result.returncode == 0, _output(result)
        return result

    def revision(self, version):
        return self.fake.state.tags(SERVICE)[version.replace(".", "-")]


@pytest.fixture(scope="module")
def project(gcloud_config, tmp_path_factory):
    storage = StorageServer(tmp_path_factory.mktemp("gcs-project"), buckets=("models",)).start()
    fake = None
    try:
        subprocess.run([sys.executable, "-m", "model", "publish", MODEL_URI, "--model-dir",
                        str(REPO / "model" / "artifacts")], cwd=REPO, check=True, capture_output=True, timeout=120,
                       env={**os.environ, "STORAGE_EMULATOR_HOST": storage.url})
        fake = FakeCloudRun(platform_env={"STORAGE_EMULATOR_HOST": storage.url}).start()
        world = GoogleProject(PROJECT, NUMBER, REGION).install(fake)
        world.storage.add_bucket("models")
        released = Project(fake, world, gcloud_config)
        released.ok("setup")
        for version in ("v1.0.0", "v1.1.0"):
            world.registry.push(f"{IMAGE_REPO}:{version}")
            released.ok("deploy", version)
        released.healthy = world.snapshot(), fake.snapshot()
        yield released
    finally:
        if fake is not None:
            fake.stop()
        storage.stop()


def _restored(project):
    world, cloud_run = project.healthy
    project.world.restore(world)
    project.fake.restore(cloud_run)
    project.fake.front.clear_faults()
    return project


def _broken_release(request):
    """v1.2.0 deployed from an image never pushed, with a MODEL_URI that holds nothing; the provider's
    condition naming another repository; the runtime account without read access to the bucket. Then
    doctor. Both outputs are kept: the drills that read them share one run."""
    project = request.getfixturevalue("project")
    if "doctor" not in project.outputs:
        _restored(project)
        deploy = project.run("deploy", "v1.2.0", MODEL_URI="gs://models/iris/9", RUN_STARTUP_PROBE_FAILURES="4")
        assert deploy.returncode == 1, _output(deploy)
        project.world.iam.state["pools"]["github"]["providers"]["github"]["attributeCondition"] = \
            "assertion.repository == 'acme/predictor-fork'"
        project.world.storage.state["buckets"]["models"].bindings = []
        doctor = project.run("doctor", "v1.2.0")
        assert doctor.returncode == 1, _output(doctor)
        project.outputs.update(deploy=_output(deploy), doctor=_output(doctor))
    return project.outputs


def drill_deploy_never_ready(request):
    return _broken_release(request)["deploy"]


def drill_doctor(request):
    return _broken_release(request)["doctor"]


def drill_canary_rolled_back(request):
    project = _restored(request.getfixturevalue("project"))
    project.fake.front.fault(project.revision("v1.1.0"), status=500)
    try:
        with Load(project.fake.state.url_for(SERVICE)) as traffic:
            result = project.run("canary", "v1.1.0", "25", "--watch", "20s", "--interval", "2s",
                                 "--min-requests", "8", "--latency-slack-ms", "150")
    finally:
        project.fake.front.clear_faults()
    assert traffic.statuses and result.returncode == 1, _output(result)
    return _output(result)


def drill_rollback(request):
    """v1.1.0 promoted, then rolled back; a later deploy leaves traffic where it is."""
    project = _restored(request.getfixturevalue("project"))
    project.ok("promote", "v1.1.0")
    steps = [project.ok("rollback"), project.ok("status")]
    return "\n".join(map(_output, steps))


DRILLS = {
    "setup-gcloud-missing": drill_setup_gcloud_missing,
    "secret-committed": drill_secret_committed,
    "image-no-engine": drill_image_no_engine,
    "image-smoke-fails": drill_image_smoke_fails,
    "doctor-image-missing": drill_doctor,
    "doctor-wif-condition": drill_doctor,
    "deploy-never-ready": drill_deploy_never_ready,
    "doctor-revision-not-ready": drill_doctor,
    "doctor-load-failures": drill_doctor,
    "doctor-bucket-access": drill_doctor,
    "load-missing": drill_load_missing,
    "load-corrupt": drill_load_corrupt,
    "load-sha256": drill_load_sha256,
    "load-untrusted": drill_load_untrusted,
    "load-pickle": drill_load_pickle,
    "load-version": drill_load_version,
    "load-denied": drill_load_denied,
    "load-unreachable": drill_load_unreachable,
    "http-400": drill_http_400,
    "http-400-columns": drill_http_400_columns,
    "http-404": drill_http_404,
    "http-405": drill_http_405,
    "http-413": drill_http_413,
    "http-415": drill_http_415,
    "http-500": drill_http_500,
    "cold-start": drill_cold_start,
    "canary-rolled-back": drill_canary_rolled_back,
    "rollback": drill_rollback,
    "http-503": drill_load_missing,
}


def test_every_quote_has_a_drill_and_every_drill_a_quote():
    quotes = runbook_quotes()
    assert set(quotes) == set(DRILLS), (f"quoted, no drill: {sorted(set(quotes) - set(DRILLS))}; "
                                        f"drill, no quote: {sorted(set(DRILLS) - set(quotes))}")


def test_every_text_block_is_a_checked_quote():
    """A ```text block reads as something the system prints, so each must be one a drill checks."""
    text = RUNBOOK.read_text()
    blocks = len(re.findall(r"^```text$", text, re.M))
    assert blocks == len(_QUOTE.findall(text))


@pytest.mark.parametrize("name", sorted(DRILLS))
def test_runbook_quote_is_what_the_system_prints(name, request):
    quote = runbook_quotes().get(name)
    assert quote, f"RUNBOOK.md has no quote for drill {name}"
    output = DRILLS[name](request)
    missing = found_in_order(quote, output)
    assert missing is None, f"RUNBOOK.md ({name}) quotes\n  {missing}\nwhich the system did not print:\n{output}"


def test_the_matcher_needs_every_line_in_order():
    output = "a revision r-00007-kux failed\nthen: traffic unchanged"
    assert found_in_order("revision … failed\ntraffic unchanged", output) is None
    assert found_in_order("traffic unchanged\nrevision … failed", output) == "revision … failed"
    assert found_in_order("revision r-00008-… failed", output) == "revision r-00008-… failed"
    assert found_in_order("revision (…) failed", "revision r failed") == "revision (…) failed"


def test_slos_in_the_runbook_are_the_ones_monitoring_holds():
    """The objectives and alerts the runbook names follow release/monitoring/alert_policies.json."""
    text = " ".join(RUNBOOK.read_text().split())
    definitions = json.loads((REPO / "release" / "monitoring" / "alert_policies.json").read_text())
    slo = definitions["slo"]
    assert f"{slo['availability']:.1%} of requests" in text
    assert f"over {slo['window_days']} days" in text
    hours = {"1h": 1, "6h": 6}
    for window in slo["burn_rate_windows"]:
        rate = window["budget_spent"] * slo["window_days"] * 24 / hours[window["long"]]
        budget = 1 - slo["availability"]
        assert (f"burn rate {rate:g} ({rate * budget:.2%} errors) over both {window['long']} and {window['short']}"
                in text), window
    assert f"p99 within {slo['latency_p99_ms'] / 1000:g} s" in text
    for policy in definitions["policies"]:
        assert policy["displayName"].replace("${SERVICE}", SERVICE) in text, policy["displayName"]


def _anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_the_runbooks_links_lead_somewhere():
    text = RUNBOOK.read_text()
    targets = {"": _anchors(text), "README.md": _anchors((REPO / "README.md").read_text())}
    links = re.findall(r"\]\((README\.md|)#([^)]+)\)", text)
    assert links
    for page, anchor in links:
        assert anchor in targets[page], f"RUNBOOK.md links to {page}#{anchor}, which is not a heading there"
    assert "RUNBOOK.md" in (REPO / "README.md").read_text()

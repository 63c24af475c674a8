"""deploy.sh end to end: the real gcloud CLI against a stateful Cloud Run fake on 127.0.0.1.

Every revision is a real local process of the function, ready once its startup probe passes.
Every scenario ends by asserting the fake's traffic table ({revision: percent}). gcloud costs
about a second per call and a revision a few seconds to start, so scenarios chain several steps,
and those that start from v1.0.0 serving with v1.1.0 beside it share one such service, deployed once
and put back as it was (FakeCloudRun.restore) before each of them.
"""

import json
import subprocess
import sys

import pytest

from tests.fakes.cloud_run import FakeCloudRun
from tests.fakes.release_env import (
    IMAGE_REPO,
    PROJECT,
    ROOT,
    SERVICE,
    run_release,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def fake():
    server = FakeCloudRun().start()
    yield server
    server.stop()


@pytest.fixture
def release(fake, gcloud_config):
    """release(*args, **env) -> CompletedProcess of ./deploy.sh against this test's fake."""
    return lambda *args, **env: run_release(fake, gcloud_config, *args, **env)


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result.stdout.strip().splitlines()


def revision(fake, version):
    return fake.state.tags(SERVICE)[version.replace(".", "-")]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    subprocess.run([sys.executable, "-m", "model", "train", "--out", str(out)], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    return out


def test_deploy_creates_service_with_first_revision_serving_everything(fake, release, model_dir):
    out = ok(release("deploy", "v1.0.0", MODEL_URI=str(model_dir), RUN_MEMORY="2Gi"))

    first = revision(fake, "v1.0.0")
    assert fake.state.traffic(SERVICE) == {first: 100}
    assert out[-1] == fake.state.url_for(SERVICE, "v1-0-0")
    spec = fake.state.revisions[first]["spec"]
    container = spec["containers"][0]
    assert container["image"] == f"{IMAGE_REPO}:v1.0.0"
    assert spec["containerConcurrency"] == 16
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert {e["name"]: e["value"] for e in container["env"]} == {"GOOGLE_CLOUD_PROJECT": PROJECT,
                                                                "MODEL_URI": str(model_dir)}
    # Ready means the model answered: the startup probe asks the readiness route, liveness never waits.
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    probes = fake.instances.get(first).probes
    assert probes[-1] == ("startup", "/v2/health/ready", True)
    annotations = fake.state.revisions[first]["metadata"]["annotations"]
    assert annotations.get("run.googleapis.com/startup-cpu-boost", "").lower() == "true"
    assert not fake.state.public(SERVICE)


def test_deploy_makes_public_service_only_when_asked(fake, release):
    ok(release("deploy", "v1.0.0", ALLOW_UNAUTHENTICATED="true"))
    assert fake.state.public(SERVICE)
    seen = len(fake.state.requests)
    ok(release("deploy", "v1.1.0"))  # unset: an existing service's IAM policy is left alone
    assert fake.state.public(SERVICE)
    assert not [path for _, path in fake.state.requests[seen:] if "IamPolicy" in path]
    ok(release("deploy", "v1.2.0", ALLOW_UNAUTHENTICATED="false"))
    assert not fake.state.public(SERVICE)
    assert fake.state.traffic(SERVICE) == {revision(fake, "v1.0.0"): 100}


DIGEST = f"{IMAGE_REPO}@sha256:{'a' * 64}"


@pytest.fixture(scope="module")
def deployed_twice(gcloud_config):
    """One fake holding v1.0.0 (serving) and v1.1.0 (no traffic, from an image digest), deployed once:
    the fake, what the second deploy printed, and the state to put back."""
    server = FakeCloudRun().start()
    # A tag URL that is not local, so smoke must ask gcloud for an identity token for it.
    server.state.tag_urls["v1-1-0"] = "https://v1-1-0---predictor-abc123xyz-ew.a.run.app"
    try:
        ok(run_release(server, gcloud_config, "deploy", "v1.0.0"))
        out = ok(run_release(server, gcloud_config, "deploy", "v1.1.0", "--image", DIGEST))
        yield server, out, server.snapshot()
    finally:
        server.stop()


@pytest.fixture
def two_versions(deployed_twice):
    """The fake with v1.0.0 serving and v1.1.0 beside it, as just deployed, whatever the last test did."""
    server, _, snapshot = deployed_twice
    server.restore(snapshot)
    server.front.clear_faults()
    return server


@pytest.fixture
def release_two(two_versions, gcloud_config):
    """release(*args, **env) against the fake of `two_versions`."""
    return lambda *args, **env: run_release(two_versions, gcloud_config, *args, **env)


def test_deploy_second_version_gets_no_traffic_and_rerun_is_safe(deployed_twice, two_versions, release_two):
    fake, out, _ = deployed_twice
    release = release_two
    first, second = revision(fake, "v1.0.0"), revision(fake, "v1.1.0")
    assert first != second
    assert out[-1] == fake.state.url_for(SERVICE, "v1-1-0")
    assert fake.state.revisions[second]["spec"]["containers"][0]["image"] == DIGEST
    writes = fake.state.mutations()

    again = ok(release("deploy", "v1.1.0", f"--image={DIGEST}"))
    assert again[-1] == out[-1]
    other = release("deploy", "v1.1.0")  # same version, another image: versions are immutable
    assert other.returncode == 1 and "already deployed" in other.stderr

    assert fake.state.mutations() == writes
    assert len(fake.state.revisions) == 2
    assert fake.state.traffic(SERVICE) == {first: 100}


def test_canary_split_then_promote_and_status(two_versions, release_two):
    fake, release = two_versions, release_two
    first, second = revision(fake, "v1.0.0"), revision(fake, "v1.1.0")

    ok(release("canary", "v1.1.0", "10"))
    assert fake.state.traffic(SERVICE) == {first: 90, second: 10}
    ok(release("canary", "v1.1.0", "50"))
    assert fake.state.traffic(SERVICE) == {first: 50, second: 50}

    ok(release("promote", "v1.1.0"))
    assert fake.state.traffic(SERVICE) == {second: 100}
    assert fake.state.tags(SERVICE)["previous"] == first

    report = json.loads("\n".join(ok(release("status", "--json"))))
    rows = {row["revision"]: row for row in report["revisions"]}
    assert rows[second]["percent"] == 100 and rows[second]["version"] == "v1.1.0"
    assert rows[first]["percent"] == 0 and set(rows[first]["tags"]) == {"v1-0-0", "previous"}
    assert rows[second]["url"] == fake.state.url_for(SERVICE, "v1-1-0")
    table = "\n".join(ok(release("status")))
    assert "REVISION" in table and f"{second}  v1.1.0   100%" in table


def test_rollback_to_previous_and_named_version_and_later_deploy_stays_pinned(two_versions, release_two):
    fake, release = two_versions, release_two
    ok(release("deploy", "v2.0.0"))
    v1, v11, v2 = (revision(fake, v) for v in ("v1.0.0", "v1.1.0", "v2.0.0"))
    ok(release("promote", "v1.1.0"))
    ok(release("promote", "v2.0.0"))
    assert fake.state.traffic(SERVICE) == {v2: 100}

    ok(release("rollback"))  # back to what served before v2.0.0
    assert fake.state.traffic(SERVICE) == {v11: 100}
    ok(release("rollback", "v1.0.0"))
    assert fake.state.traffic(SERVICE) == {v1: 100}

    out = ok(release("deploy", "v2.1.0"))
    assert out[-1] == fake.state.url_for(SERVICE, "v2-1-0")
    assert fake.state.traffic(SERVICE) == {v1: 100}
    ok(release("rollback"))  # the previous of a rollback is the revision it moved away from
    assert fake.state.traffic(SERVICE) == {v11: 100}


BAD_INPUTS = [
    (("deploy", "1.2.3"), {}, "not a release version"),
    (("deploy", "v1.2"), {}, "not a release version"),
    (("deploy", "v01.2.3"), {}, "not a release version"),
    (("deploy", "v1.2.3-rc.1"), {}, "not a release version"),
    (("deploy", "v1.2.3", "--image"), {}, "usage"),
    (("deploy", "v1.2.3"), {"IMAGE_REPO": None}, "missing env var IMAGE_REPO"),
    (("deploy", "v1.2.3"), {"IMAGE_REPO": f"{IMAGE_REPO}:latest"}, "must not carry a tag"),
    (("deploy", "v1.2.3"), {"PROJECT_ID": None}, "missing env var PROJECT_ID"),
    (("deploy", "v1.2.3"), {"REGION": ""}, "missing env var REGION"),
    (("deploy", "v1.2.3"), {"SERVICE": "Bad_Name"}, "not a valid Cloud Run service name"),
    (("deploy", "v1.2.3"), {"RUN_CONCURRENCY": "many"}, "RUN_CONCURRENCY"),
    (("deploy", "v1.2.3"), {"RUN_MIN_INSTANCES": "5", "RUN_MAX_INSTANCES": "2"}, "above RUN_MAX_INSTANCES"),
    (("deploy", "v1.2.3"), {"RUN_CPU_BOOST": "yes"}, "must be true or false"),
    (("deploy", "v1.2.3"), {"ALLOW_UNAUTHENTICATED": "public"}, "must be true or false"),
    (("canary", "v1.1.0", "0"), {}, "from 1 to 99"),
    (("canary", "v1.1.0", "100"), {}, "from 1 to 99"),
    (("canary", "v1.1.0", "ten"), {}, "from 1 to 99"),
    (("canary", "v1.1.0", "-5"), {}, "usage"),
    (("canary", "v1.1.0"), {}, "usage"),
    (("canary", "v9.9.9", "10"), {}, "unknown version v9.9.9"),
    (("canary", "v1.0.0", "10"), {}, "already serves all traffic"),
    (("promote", "v9.9.9"), {}, "unknown version v9.9.9"),
    (("promote", "latest"), {}, "not a release version"),
    (("rollback", "v9.9.9"), {}, "unknown version v9.9.9"),
    (("rollback",), {}, "no previous revision recorded"),
    (("rollback", "v1.0.0", "v1.1.0"), {}, "usage"),
    (("smoke", "v9.9.9"), {}, "unknown version v9.9.9"),
    (("promote", "v1.1.0"), {"SERVICE": "missing"}, "does not exist"),
    (("status", "--yaml"), {}, "usage"),
    (("ship", "v1.0.0"), {}, "unknown command"),
    (("smoke", "v1.1.0"), {"SMOKE_WAIT": "0"}, "no identity token"),  # no credentials here
    (("deploy", "v1.2.3"), {"MODEL_URL": "gs://b/m"}, "MODEL_URL is not a setting of the function"),
    (("deploy", "v1.2.3"), {"MAX_ROWS": "many"}, "MAX_ROWS"),
    (("deploy", "v1.2.3"), {"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    (("deploy", "v1.2.3"), {"RUN_STARTUP_PROBE_PERIOD": "0"}, "RUN_STARTUP_PROBE_PERIOD"),
    (("deploy", "v1.2.3", "--dry-run"), {}, "v1.2.3 against"),  # says what it would change, changes nothing
    (("compare", "v1.1.0", "--data", "/nonexistent/rows.jsonl"), {}, "cannot read --data"),
    (("compare", "v1.1.0", "--min-agreement", "2"), {}, "usage"),
    (("compare", "v1.0.0"), {}, "nothing to compare it with"),
    (("compare", "v1.1.0", "v1.1.0"), {}, "same revision"),
    (("canary", "v1.1.0", "10", "--watch", "soon"), {}, "expected a duration"),
    (("canary", "v1.1.0", "10", "--no-promote"), {}, "--no-promote needs --watch"),
    (("canary", "v1.1.0", "10", "--watch", "1m"), {"CANARY_MIN_REQUESTS": "0"}, "usage"),
]


@pytest.mark.parametrize(("args", "env", "message"), BAD_INPUTS,
                         ids=[" ".join(a) + "|" + ",".join(e) for a, e, _ in BAD_INPUTS])
def test_bad_input_exits_nonzero_with_one_line_and_changes_nothing(two_versions, gcloud_config,
                                                                    args, env, message):
    before = (two_versions.state.mutations(), two_versions.state.traffic(SERVICE),
              two_versions.state.tags(SERVICE), len(two_versions.state.revisions))

    result = run_release(two_versions, gcloud_config, *args, **env)

    lines = result.stderr.strip().splitlines()
    if "--dry-run" in args:
        assert result.returncode == 0 and message in lines[0], result.stderr
    else:
        assert result.returncode != 0
        assert len(lines) == 1 and message in lines[0], result.stderr
    after = (two_versions.state.mutations(), two_versions.state.traffic(SERVICE),
             two_versions.state.tags(SERVICE), len(two_versions.state.revisions))
    assert after == before
    assert after[1] == {two_versions.state.tags(SERVICE)["v1-0-0"]: 100}


def test_deploy_without_arguments_prints_usage():
    result = subprocess.run([str(ROOT / "deploy.sh")], capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "Usage" in result.stderr
    helped = subprocess.run([str(ROOT / "deploy.sh"), "help"], capture_output=True, text=True, check=False)
    assert helped.returncode == 0
    for name in ("PROJECT_ID", "IMAGE_REPO", "RUN_CONCURRENCY", "ALLOW_UNAUTHENTICATED", "SMOKE_TOKEN",
                 "RUN_STARTUP_PROBE_PERIOD", "BATCHING", "MAX_ROWS", "LOG_LEVEL", "GRACEFUL_TIMEOUT_S",
                 "compare NEW [OLD]", "--watch DURATION", "--no-promote", "COMPARE_MIN_AGREEMENT",
                 "CANARY_MIN_REQUESTS", "CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING", "--dry-run"):
        assert name in helped.stdout


def test_smoke_passes_through_the_tag_url_of_a_ready_revision(two_versions, release_two):
    fake, release = two_versions, release_two
    report = json.loads(ok(release("smoke", "v1.0.0"))[-1])

    assert report["url"] == fake.state.url_for(SERVICE, "v1-0-0")
    assert report["features"] == 4 and report["prediction"] in (0, 1, 2)
    assert fake.state.traffic(SERVICE) == {revision(fake, "v1.0.0"): 100}


def test_smoke_fails_when_the_revision_cannot_serve(two_versions, release_two):
    fake, release = two_versions, release_two
    fake.state.tag_urls["v1-2-0"] = "http://127.0.0.1:9"  # nothing listens on the discard port
    ok(release("deploy", "v1.2.0"))
    fake.front.fault(revision(fake, "v1.0.0"), status=503)  # as when its instance stops answering

    not_ready = release("smoke", "v1.0.0", SMOKE_WAIT="1")
    unreachable = release("smoke", "v1.2.0", SMOKE_WAIT="1")

    assert not_ready.returncode == 1 and "not ready" in not_ready.stderr
    assert unreachable.returncode == 1 and "not ready" in unreachable.stderr
    assert fake.state.traffic(SERVICE) == {revision(fake, "v1.0.0"): 100}

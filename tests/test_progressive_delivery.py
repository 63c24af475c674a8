"""Progressive delivery end to end: probes, settings, compare and the metric-gated canary.

The real gcloud CLI drives the Cloud Run stand-in, whose revisions are real local processes of the
function behind the service and tag URLs; Cloud Logging and Cloud Monitoring stand-ins are fed by
what those processes write and what the front served. Failures of a canary (5xx, slowness) are made
at the front (`fake.front.fault`), where Cloud Run would see a failing container, so the numbers the
canary is judged by come from traffic that really flowed. Every scenario asserts the final traffic.
"""

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from release import canary as canaries
from release import monitoring
from tests.fakes.cloud_run import FakeCloudRun
from tests.fakes.release_env import ROOT, SERVICE, Load, run_release

pytestmark = pytest.mark.timeout(300)
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def _held_out_rows():
    """The rows `python -m model train` holds out (same split), as request-ready JSON objects."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    data = load_iris()
    _, x_test, _, _ = train_test_split(data.data, data.target, test_size=0.2, stratify=data.target, random_state=0)
    return [dict(zip(FEATURES, map(float, row))) for row in x_test]


def _write_rows(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _train_flipped(out):
    """The same model type trained on labels shifted by one class: it answers, just differently."""
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from model import manifest

    data = load_iris()
    estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(data.data, (data.target + 1) % 3)
    out.mkdir(parents=True)
    skops.io.dump(estimator, out / "model.skops")
    manifest.write(manifest.build(name="iris", version="flipped", estimator=estimator, features=data.feature_names,
                                  classes=estimator.classes_.tolist(), task="classification",
                                  artifact=out / "model.skops"), out)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """good: the default model with its held-out rows beside it; flipped: answers differ; empty: none."""
    base = tmp_path_factory.mktemp("models")
    good = base / "good"
    subprocess.run([sys.executable, "-m", "model", "train", "--out", str(good)], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    rows = _held_out_rows()
    _write_rows(good / "examples.jsonl", rows)
    (base / "empty").mkdir()
    return {"good": good, "flipped": _train_flipped(base / "flipped"), "empty": base / "empty",
            "rows": _write_rows(base / "rows.jsonl", rows)}


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result.stdout.strip().splitlines()


def tagged(fake, version):
    return fake.state.tags(SERVICE).get(version.replace(".", "-"))


# -- probes ---------------------------------------------------------------------------------------
def test_a_model_that_cannot_load_never_gets_traffic(gcloud_config, models):
    fake = FakeCloudRun().start()
    try:
        release = lambda *args, **env: run_release(fake, gcloud_config, *args, **env)  # noqa: E731
        ok(release("deploy", "v1.0.0", MODEL_URI=str(models["good"])))
        v1 = tagged(fake, "v1.0.0")
        tags_before = fake.state.tags(SERVICE)

        failed = release("deploy", "v1.1.0", MODEL_URI=str(models["empty"]), RUN_STARTUP_PROBE_FAILURES="4")

        assert failed.returncode == 1
        ours = [line for line in failed.stderr.splitlines() if line.startswith("deploy.sh:")]
        last = failed.stderr.strip().splitlines()[-1]
        assert ours == [last]  # after gcloud's own progress, one line says what happened
        broken = fake.state.services[SERVICE]["status"]["latestCreatedRevisionName"]
        assert last.startswith(f"deploy.sh: v1.1.0 did not deploy: revision {broken} never became ready: "
                               f"model load failed: ")
        assert str(models["empty"]) in last and "(MODEL_NOT_FOUND)" in last
        assert last.endswith(f'traffic unchanged: {{"{v1}": 100}}')
        assert fake.state.readiness(broken) == "False"
        assert [ok for kind, _, ok in fake.instances.get(broken).probes if kind == "startup"] == [False] * 4
        assert fake.state.traffic(SERVICE) == {v1: 100}
        assert fake.state.tags(SERVICE) == tags_before  # the version's tag was taken back
        conditions = {c["type"]: c["status"] for c in fake.state.services[SERVICE]["status"]["conditions"]}
        assert conditions == {"Ready": "False", "ConfigurationsReady": "False", "RoutesReady": "True"}

        # Fixed, the same version deploys as a new revision; traffic still stays where it was.
        out = ok(release("deploy", "v1.1.0", MODEL_URI=str(models["good"])))
        fixed = tagged(fake, "v1.1.0")
        assert fixed not in (v1, broken) and out[-1] == fake.state.url_for(SERVICE, "v1-1-0")
        assert fake.state.services[SERVICE]["status"]["conditions"][0]["status"] == "True"
        assert fake.state.traffic(SERVICE) == {v1: 100}
    finally:
        fake.stop()


# -- settings -------------------------------------------------------------------------------------
def test_settings_go_through_a_release_and_one_set_by_hand_is_reported(gcloud_config, tmp_path):
    fake = FakeCloudRun().start()
    try:
        release = lambda *args, **env: run_release(fake, gcloud_config, *args, **env)  # noqa: E731
        ok(release("deploy", "v1.0.0", BATCHING="false", MAX_ROWS="2"))
        v1 = tagged(fake, "v1.0.0")
        env = {e["name"]: e["value"] for e in fake.state.revisions[v1]["spec"]["containers"][0]["env"]}
        assert env == {"GOOGLE_CLOUD_PROJECT": "demo-project", "BATCHING": "false", "MAX_ROWS": "2"}
        too_many = {"instances": [[5.1, 3.5, 1.4, 0.2]] * 3}
        assert _post(fake.state.url_for(SERVICE, "v1-0-0") + "/predict", too_many) == 400  # MAX_ROWS applies
        assert _post(fake.state.url_for(SERVICE, "v1-0-0") + "/predict", {"instances": too_many["instances"][:2]}) == 200

        # By hand, outside any release: a new revision that takes the traffic (the service follows latest).
        hand = subprocess.run(["gcloud", "run", "services", "update", SERVICE, "--update-env-vars=LOG_LEVEL=DEBUG",
                               "--project=demo-project", "--region=europe-west1", "--quiet"],
                              env=_gcloud_env(fake, gcloud_config), capture_output=True, text=True,
                              timeout=120, check=False)
        assert hand.returncode == 0, hand.stderr
        by_hand = fake.state.services[SERVICE]["status"]["latestReadyRevisionName"]
        assert fake.state.traffic(SERVICE) == {by_hand: 100}
        writes = fake.state.mutations()

        plan = release("deploy", "v1.1.0", "--dry-run", BATCHING="false")
        assert plan.returncode == 0 and fake.state.mutations() == writes
        lines = plan.stderr.strip().splitlines()
        assert lines[0] == f"v1.1.0 against {by_hand}, which serves 100%:"
        assert "  LOG_LEVEL: DEBUG -> unset (default INFO); dropped: set on the serving revision but not in this " \
               "release (set LOG_LEVEL=DEBUG when deploying to keep it)" in lines
        assert any(line.startswith("  MAX_ROWS: 2 -> unset (default 10000); dropped") for line in lines)
        assert not any("BATCHING" in line for line in lines)

        deployed = release("deploy", "v1.1.0", BATCHING="false", LOG_LEVEL="DEBUG", RUN_MEMORY="2Gi")
        ok(deployed)
        assert "  RUN_MEMORY: 1Gi -> 2Gi" in deployed.stderr and "LOG_LEVEL" not in deployed.stderr
        v11 = tagged(fake, "v1.1.0")
        env = {e["name"]: e["value"] for e in fake.state.revisions[v11]["spec"]["containers"][0]["env"]}
        assert env == {"GOOGLE_CLOUD_PROJECT": "demo-project", "BATCHING": "false", "LOG_LEVEL": "DEBUG"}
        assert fake.state.traffic(SERVICE) == {by_hand: 100}
    finally:
        fake.stop()


def _gcloud_env(fake, config_dir):
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CLOUDSDK_")}, **fake.gcloud_env(config_dir)}


def _post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


# -- compare and canary: one service with a stable, a like-for-like and a flipped release -------------
@pytest.fixture(scope="module")
def gated(gcloud_config, models):
    """v1.0.0 serves; v1.1.0 answers alike (same model, other settings); v2.0.0 flips its answers.
    Yields the fake, a release function, and the state to put back (fake.restore) between scenarios."""
    fake = FakeCloudRun().start()
    fake.monitoring.page_size = 2  # several pages per read, as a busy project gives
    release = lambda *args, **env: run_release(fake, gcloud_config, *args, **env)  # noqa: E731
    try:
        ok(release("deploy", "v1.0.0", MODEL_URI=str(models["good"])))
        ok(release("deploy", "v1.1.0", MODEL_URI=str(models["good"]), BATCHING="false"))
        ok(release("deploy", "v2.0.0", MODEL_URI=str(models["flipped"])))
        yield fake, release, fake.snapshot()
    finally:
        fake.stop()


def test_compare_passes_a_release_that_answers_alike(gated):
    fake, release, _ = gated
    v1 = tagged(fake, "v1.0.0")

    # OLD defaults to the revision serving most traffic; rows to the new model's examples.jsonl.
    report = json.loads(ok(release("compare", "v1.1.0", "--max-latency-ratio", "5"))[-1])

    assert report["passed"] is True and report["rows"] == 30 and report["compared"] == 30
    assert report["agreement"] == 1.0 and report["disagreements"] == []
    assert report["data"].endswith("good/examples.jsonl")
    assert report["old"]["revision"] == v1 and report["old"]["version"] == "v1.0.0"
    assert report["new"]["errors"] == 0 and report["new"]["p50_ms"] > 0 and report["old"]["p99_ms"] > 0
    assert fake.state.traffic(SERVICE) == {v1: 100}


def test_compare_catches_a_model_that_flips_its_answers(gated, models):
    fake, release, _ = gated
    v1 = tagged(fake, "v1.0.0")

    result = release("compare", "v2.0.0", "v1.0.0", "--data", str(models["rows"]), "--max-latency-ratio", "5")

    assert result.returncode == 1
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["passed"] is False and report["compared"] == 30 and report["agreement"] < 0.1
    assert len(report["disagreements"]) == 5 and all(d["new"] != d["old"] for d in report["disagreements"])
    assert re.fullmatch(r"deploy\.sh: compare: agreement 0\.0\d{3} is below --min-agreement 0\.99 "
                        r"\([0-2] of 30 rows\)", result.stderr.strip().splitlines()[-1]), result.stderr
    # Without rows of its own, the flipped model (which ships none) cannot be compared by default.
    missing = release("compare", "v2.0.0")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (f"deploy.sh: no held-out rows for the new model at {models['flipped']}/"
                                      "examples.jsonl; pass --data FILE (JSON lines, one row per line)")
    assert fake.state.traffic(SERVICE) == {v1: 100}  # nothing promoted


# Slack well above what a busy shared machine adds to a p99 of a few ms, well below the slow fault.
def test_compare_catches_a_release_that_got_slower(gated, models, tmp_path):
    fake, release, _ = gated
    fake.front.fault(tagged(fake, "v1.1.0"), delay_s=0.2)
    rows = tmp_path / "five.jsonl"
    rows.write_text("".join(models["rows"].read_text().splitlines(keepends=True)[:5]))
    try:
        result = release("compare", "v1.1.0", "--data", str(rows))
    finally:
        fake.front.clear_faults()

    assert result.returncode == 1
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["agreement"] == 1.0 and report["new"]["p50_ms"] >= 200 > report["old"]["p50_ms"]
    assert "(--max-latency-ratio 1.5)" in result.stderr.strip().splitlines()[-1]
    assert fake.state.traffic(SERVICE) == {tagged(fake, "v1.0.0"): 100}


WATCH = ("--interval", "2s", "--min-requests", "8", "--latency-slack-ms", "150")


@pytest.fixture
def canary_run(gated):
    """run(load=True, *args) -> the canary of v1.1.0 at 25% with steady traffic on the service URL;
    each test starts from the service as deployed (v1.0.0 serving everything) and no faults."""
    fake, release, deployed = gated
    fake.restore(deployed)
    fake.front.clear_faults()

    def run(*args, load=True):
        if not load:
            return release("canary", "v1.1.0", "25", *args)
        with Load(fake.state.url_for(SERVICE)) as traffic:
            result = release("canary", "v1.1.0", "25", *args)
        assert traffic.statuses, "the load generator sent nothing"
        return result

    yield fake, run
    fake.front.clear_faults()


def _decisions(result):
    return [line for line in result.stdout.splitlines() if line.startswith("canary ")]


def test_canary_that_answers_5xx_is_rolled_back_at_once(canary_run):
    fake, run = canary_run
    v1, v11 = tagged(fake, "v1.0.0"), tagged(fake, "v1.1.0")
    fake.front.fault(v11, status=500)

    result = run("--watch", "20s", *WATCH)

    assert result.returncode == 1
    decisions = _decisions(result)
    assert decisions[-1].startswith("canary rollback at ") and "canary 5xx rate 100.00%" in decisions[-1]
    assert f"new {v11} " in decisions[-1] and f"stable {v1} " in decisions[-1]
    assert int(decisions[-1].split(" at ")[1].split("s")[0]) < 20  # before the window ended
    assert result.stderr.strip().splitlines()[-1].startswith(f"deploy.sh: canary v1.1.0 rolled back to {v1}: ")
    assert fake.state.traffic(SERVICE) == {v1: 100}
    assert fake.state.tags(SERVICE)["previous"] == v1  # a later `rollback` cannot bring the canary back


def test_canary_that_gets_slow_is_rolled_back(canary_run):
    fake, run = canary_run
    v1, v11 = tagged(fake, "v1.0.0"), tagged(fake, "v1.1.0")
    fake.front.fault(v11, delay_s=0.5)

    result = run("--watch", "20s", *WATCH)

    assert result.returncode == 1
    assert "canary p99 " in _decisions(result)[-1] and "x the stable's" in _decisions(result)[-1]
    assert fake.state.traffic(SERVICE) == {v1: 100}


def test_canary_with_too_little_traffic_is_not_judged(canary_run):
    fake, run = canary_run
    v1 = tagged(fake, "v1.0.0")

    result = run("--watch", "5s", *WATCH, load=False)

    assert result.returncode == 1
    decisions = _decisions(result)
    assert all(" wait at " in line for line in decisions[:-1])
    assert decisions[-1].startswith("canary rollback at ") and "not judged" in decisions[-1]
    assert fake.state.traffic(SERVICE) == {v1: 100}


def test_healthy_canary_is_held_with_no_promote(canary_run):
    fake, run = canary_run
    v1, v11 = tagged(fake, "v1.0.0"), tagged(fake, "v1.1.0")

    result = run("--watch", "6s", "--no-promote", *WATCH)

    ok(result)
    assert _decisions(result)[-1].startswith("canary hold at ")
    assert fake.state.traffic(SERVICE) == {v1: 75, v11: 25}


def test_healthy_canary_promotes_itself(canary_run):
    fake, run = canary_run
    v1, v11 = tagged(fake, "v1.0.0"), tagged(fake, "v1.1.0")

    result = run("--watch", "8s", *WATCH)

    out = ok(result)
    decisions = _decisions(result)
    assert [line.split(" at ")[0] for line in decisions][-1] == "canary promote"
    assert "canary healthy at " in "\n".join(decisions[:-1])
    assert out[-1] == f'promoted: {{"{v11}": 100}}'
    assert fake.state.traffic(SERVICE) == {v11: 100}
    assert fake.state.tags(SERVICE)["previous"] == v1


def test_canary_watch_needs_monitoring_access_before_moving_traffic(gated):
    fake, release, deployed = gated
    fake.restore(deployed)
    v1 = tagged(fake, "v1.0.0")
    writes = fake.state.mutations()
    fake.token_file.write_text("not-the-token")
    try:
        result = release("canary", "v1.1.0", "25", "--watch", "10s")
    finally:
        fake.token_file.write_text(fake.access_token)

    assert result.returncode == 1
    assert result.stderr.strip().startswith("deploy.sh: Cloud Monitoring answered 401: ")
    assert "roles/monitoring.viewer" in result.stderr
    assert fake.state.mutations() == writes and fake.state.traffic(SERVICE) == {v1: 100}


# -- the arithmetic the canary is judged by -----------------------------------------------------------
def test_percentiles_interpolate_within_the_api_buckets():
    options = {"exponentialBuckets": {"numFiniteBuckets": 10, "growthFactor": 2, "scale": 1}}
    bounds = monitoring._bounds(options)
    assert bounds[:3] == [(0.0, 1), (1, 2), (2, 4)] and bounds[-1] == (1024, 1024)
    figures = monitoring.Figures(requests=100, errors=0, buckets=[(2, 4, 90), (64, 128, 10)])
    assert figures.percentile(0.5) == pytest.approx(2 + 2 * 50 / 90)
    assert figures.percentile(0.99) == pytest.approx(64 + 64 * 9 / 10)
    linear = monitoring._bounds({"linearBuckets": {"numFiniteBuckets": 2, "width": 5, "offset": 10}})
    assert linear == [(0.0, 10), (10, 15), (15, 20), (20, 20)]
    assert monitoring._bounds({"explicitBuckets": {"bounds": [1, 3]}}) == [(0.0, 1), (1, 3), (3, 3)]


def test_judgement_needs_enough_requests_and_compares_with_the_stable():
    gates = canaries.Gates(interval_s=1, min_requests=10, max_error_rate=0.01, max_latency_ratio=1.5,
                           latency_slack_ms=25)
    fast = [(2, 4, 1)]
    quiet = monitoring.Figures(requests=9, errors=9, buckets=fast)
    stable = monitoring.Figures(requests=100, errors=5, buckets=fast * 100)
    assert canaries.judge(quiet, stable, gates)[0] == "wait"
    as_bad_as_stable = monitoring.Figures(requests=100, errors=5, buckets=fast * 100)
    assert canaries.judge(as_bad_as_stable, stable, gates)[0] == "healthy"
    worse = monitoring.Figures(requests=100, errors=7, buckets=fast * 100)
    assert canaries.judge(worse, stable, gates)[0] == "breach"
    slightly_slower = monitoring.Figures(requests=100, errors=5, buckets=[(8, 16, 100)])
    assert canaries.judge(slightly_slower, stable, gates)[0] == "healthy"  # 2x, but only ~12 ms more
    slow = monitoring.Figures(requests=100, errors=5, buckets=[(256, 512, 100)])
    verdict, reason = canaries.judge(slow, stable, gates)
    assert verdict == "breach" and "canary p99" in reason

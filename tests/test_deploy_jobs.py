"""`./deploy.sh job` and `./deploy.sh batch` end to end: the real gcloud CLI against the Cloud Run fake
with its jobs API, whose executions run each task as a real `python -m batch` process against a real
storage server."""

import json

import pytest
from google.cloud import storage as gcs_storage

from model import publish
from tests.fakes.cloud_run import FakeCloudRun
from tests.fakes.cloud_run_jobs import CloudRunJobs, LocalTasks
from tests.fakes.release_env import IMAGE_REPO, PROJECT, ROOT, run_release

pytestmark = pytest.mark.timeout(300)
JOB = "predictor-batch"


@pytest.fixture
def cloud(storage, tmp_path):
    """(fake, jobs API, task runner): tasks reach the storage server as a job's tasks reach Cloud Storage."""
    fake = FakeCloudRun().start()
    runner = LocalTasks(ROOT, {"STORAGE_EMULATOR_HOST": storage.url, "MODEL_CACHE_DIR": str(tmp_path / "cache")},
                        tmp_path)
    jobs = fake.add_api(CloudRunJobs(fake.state, runner))
    yield fake, jobs, runner
    jobs.wait()
    fake.stop()


@pytest.fixture
def release(cloud, gcloud_config):
    return lambda *args, **env: run_release(cloud[0], gcloud_config, *args, **env)


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result.stdout.strip().splitlines()


def _container(job):
    return job["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]


def test_job_creates_the_job_on_the_release_image_then_updates_it(cloud, release):
    _, jobs, _ = cloud

    first = json.loads(ok(release("job", "v1.0.0", MODEL_URI="gs://models/iris", BATCH_SIZE="500", JOB_MEMORY="4Gi",
                                  JOB_MAX_RETRIES="1"))[-1])
    created = jobs.jobs[JOB]
    container = _container(created)
    second = json.loads(ok(release("job", "v1.1.0", MODEL_URI="gs://models/iris"))[-1])

    assert first == {"job": JOB, "version": "v1.0.0", "image": f"{IMAGE_REPO}:v1.0.0", "created": True}
    assert container["command"] == ["python", "-m", "batch"] and not container.get("args")
    assert {e["name"]: e["value"] for e in container["env"]} == {
        "GOOGLE_CLOUD_PROJECT": PROJECT, "MODEL_URI": "gs://models/iris", "BATCH_SIZE": "500"}
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "4Gi"}
    assert created["spec"]["template"]["spec"]["template"]["spec"]["maxRetries"] == 1
    assert second["created"] is False and _container(jobs.jobs[JOB])["image"] == f"{IMAGE_REPO}:v1.1.0"
    assert jobs.jobs[JOB]["metadata"]["generation"] == 2


def test_batch_runs_every_task_as_a_process_and_waits_for_the_result(cloud, release, storage, trained):
    _, jobs, runner = cloud
    rows = [[5.1, 3.5, 1.4, 0.2 + k / 1000] for k in range(600)]
    bucket = gcs_storage.Client(project="test").bucket("data")
    data = "".join(json.dumps(r) + "\n" for r in rows)
    bucket.blob("jobs/in/rows.jsonl").upload_from_string(data)
    shards = -(-len(data) // int(0.005 * 2**20))  # BATCH_SHARD_MB=0.005: shards of at most 5,242 bytes
    model = publish.publish(trained("logreg"), "gs://models/jobs/iris")
    ok(release("job", "v1.0.0", MODEL_URI=model["pinned_uri"], BATCH_SHARD_MB="0.005"))

    out = ok(release("batch", "v1.0.0", "gs://data/jobs/in", "gs://data/jobs/out/", "--tasks", "3"))

    summary = json.loads(out[-1])
    assert summary["tasks"] == 3 and summary["succeeded"] == 3 and summary["failed"] == 0 and summary["completed"]
    assert sorted((index, attempt, code) for _, index, attempt, code, _ in runner.runs) == [
        (0, 0, 0), (1, 0, 0), (2, 0, 0)]
    names = sorted(b.name for b in bucket.list_blobs(prefix="jobs/out/"))
    assert shards >= 3 and names == [f"jobs/out/rows-{k:05d}-of-{shards:05d}.jsonl" for k in range(shards)]
    lines = [json.loads(line) for name in names for line in bucket.blob(name).download_as_bytes().splitlines()]
    assert [line["instance"] for line in lines] == rows and {line["prediction"] for line in lines} == {0}
    execution = jobs.executions[summary["execution"]]
    assert execution["spec"]["template"]["spec"]["containers"][0]["args"] == ["gs://data/jobs/in", "gs://data/jobs/out/"]


def test_batch_whose_tasks_fail_exits_1_after_the_retries(cloud, release, trained):
    _, jobs, runner = cloud
    ok(release("job", "v1.0.0", MODEL_URI=str(trained("logreg")), JOB_MAX_RETRIES="1"))

    result = release("batch", "v1.0.0", "gs://data/nothing-here", "gs://data/out", "--tasks", "2")

    assert result.returncode == 1
    assert "failed: 2 of 2 tasks failed (Task predictor-batch-" in result.stderr
    assert sorted((index, attempt, code) for _, index, attempt, code, _ in runner.runs) == [
        (0, 0, 1), (0, 1, 1), (1, 0, 1), (1, 1, 1)]
    log = next(runner.log_dir.glob("*-task0-attempt0.log")).read_text()
    assert "input gs://data/nothing-here does not exist" in log


@pytest.mark.parametrize("args, message", [
    (["batch", "v1.0.0", "/local/in", "gs://data/out"], "INPUT must be a gs://BUCKET/PATH URI"),
    (["batch", "v1.0.0", "gs://data/in", "gs://data/out", "--tasks", "0"], "--tasks must be an integer from 1 to 10000"),
    (["batch", "1.0", "gs://data/in", "gs://data/out"], "not a release version: '1.0'"),
    (["batch", "v1.0.0", "gs://data/in"], "the following arguments are required: output"),
    (["job", "v1.0.0"], "JOB_MAX_RETRIES='11' must be an integer from 0 to 10"),
])
def test_bad_input_exits_2_before_anything_changes(cloud, release, args, message):
    fake, jobs, _ = cloud

    result = release(*args, JOB_MAX_RETRIES="11")

    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert fake.state.mutations() == 0 and not jobs.executions


def test_batch_needs_the_job_on_that_version(cloud, release):
    _, jobs, _ = cloud

    missing = release("batch", "v1.0.0", "gs://data/in", "gs://data/out")
    ok(release("job", "v1.0.0"))
    other = release("batch", "v1.1.0", "gs://data/in", "gs://data/out")

    assert missing.returncode == 1 and "job predictor-batch does not exist" in missing.stderr
    assert "run ./deploy.sh job v1.0.0 first" in missing.stderr
    assert other.returncode == 1 and f"runs {IMAGE_REPO}:v1.0.0, not v1.1.0" in other.stderr
    assert not jobs.executions

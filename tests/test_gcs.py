"""Models from Cloud Storage: `model.gcs.fetch` and `model.publish` against a real GCS JSON API server."""

import concurrent.futures
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests
from google.cloud import storage

from model import gcs, gcs_client, publish
from model.__main__ import main as model_cli
from model.errors import ModelIntegrityError, ModelNotFound, SourceUnavailable
from model.sources import FetchOptions, fetch
from tests.conftest import IRIS_ROW, REPO, simultaneous_predictions
from tests.gcs_server import StorageServer
from tests.net import free_port

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A started storage server with bucket `models`; STORAGE_EMULATOR_HOST points at it."""
    running = StorageServer(tmp_path / "gcs-data").start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", running.url)
    gcs.reset_client()
    try:
        yield running
    finally:
        running.stop()
        gcs.reset_client()


@pytest.fixture
def options(tmp_path):
    return FetchOptions(cache_dir=tmp_path / "cache", timeout_s=5.0)


def _bucket(server):
    return storage.Client(project="test").bucket("models")


def _cached_files(options) -> list[str]:
    root = options.cache_dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_fetch_after_publish_returns_manifest_and_exact_artifact(server, model_dir, options):
    published = publish.publish(model_dir, "gs://models/iris")

    fetched = fetch("gs://models/iris", options)

    assert sorted(p.name for p in fetched.path.iterdir()) == ["examples.jsonl", "manifest.json", "model.skops"]
    assert (fetched.path / "model.skops").read_bytes() == (model_dir / "model.skops").read_bytes()
    manifest = json.loads((fetched.path / "manifest.json").read_text())
    assert manifest["artifact"]["generation"] == published["artifact"]["generation"]
    assert fetched.details == {"generation": published["generation"],
                               "object": f"gs://models/iris/manifest.json#{published['generation']}",
                               "artifact_generation": published["artifact"]["generation"]}


def test_a_compiled_model_travels_with_its_onnx_file(server, tmp_path, options):
    from model import artifact, training

    training.train(tmp_path / "onnx", runtime="onnx")
    published = publish.publish(tmp_path / "onnx", "gs://models/compiled")

    fetched = fetch("gs://models/compiled", options)

    assert {"manifest.json", "model.onnx"} <= {p.name for p in fetched.path.iterdir()}
    assert published["compiled"]["generation"] == json.loads((fetched.path / "manifest.json").read_text())[
        "compiled"]["generation"]
    model = artifact.load(fetched.path, artifact.LoadPolicy())
    assert model.format == "onnx" and model.estimator.predict(np.array([IRIS_ROW])).tolist() == [0]


def test_publish_main_prints_generations_as_json(server, trained, capsys):
    assert model_cli(["publish", "gs://models/team/iris/", "--model-dir", str(trained("logreg"))]) == 0

    printed = json.loads(capsys.readouterr().out)
    assert printed["uri"] == "gs://models/team/iris"
    assert printed["pinned_uri"] == f"gs://models/team/iris#{printed['generation']}"
    blob = _bucket(server).get_blob("team/iris/manifest.json")
    assert blob.generation == printed["generation"]
    assert json.loads(blob.download_as_bytes())["artifact"]["generation"] == printed["artifact"]["generation"]


def test_publish_command_line_uploads_and_prints_the_generation(server, trained):
    done = subprocess.run([sys.executable, "-m", "model", "publish", "gs://models/cli", "--model-dir",
                           str(trained("logreg"))], check=False, cwd=REPO, capture_output=True, text=True,
                          timeout=120,
                          env={**os.environ, "STORAGE_EMULATOR_HOST": server.url})

    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert _bucket(server).get_blob("cli/manifest.json").generation == printed["generation"]


def test_publish_refuses_artifact_that_does_not_match_its_manifest(server, model_dir, capsys):
    (model_dir / "model.skops").write_bytes(b"not the trained model")

    assert model_cli(["publish", "gs://models/iris", "--model-dir", str(model_dir)]) == 1

    assert "does not match" in capsys.readouterr().err
    assert list(_bucket(server).list_blobs()) == []


def test_fetch_pinned_generation_returns_that_generation(server, trained, options):
    first = publish.publish(trained("logreg"), "gs://models/iris")

    by_fragment = fetch(first["pinned_uri"], options)
    by_option = fetch("gs://models/iris", FetchOptions(options.cache_dir, 5.0, generation=first["generation"]))

    assert by_fragment.path == by_option.path
    assert by_fragment.details["generation"] == first["generation"]


def test_fetch_pinned_generation_that_is_gone_names_the_live_one(server, trained, options):
    first = publish.publish(trained("logreg"), "gs://models/iris")
    second = publish.publish(trained("forest"), "gs://models/iris")

    with pytest.raises(ModelNotFound) as raised:
        fetch(first["pinned_uri"], options)

    message = str(raised.value)
    assert first["pinned_uri"] in message and f"the live one is {second['generation']}" in message
    latest = fetch("gs://models/iris", options)
    assert "RandomForest" in json.loads((latest.path / "manifest.json").read_text())["estimator"]


def test_fetch_uri_and_option_pinning_different_generations_is_refused(options):
    with pytest.raises(ModelNotFound, match="MODEL_GENERATION is 2"):
        fetch("gs://models/iris#1", FetchOptions(options.cache_dir, 5.0, generation=2))


def test_fetch_missing_object_names_uri_and_publish_command(server, options):
    with pytest.raises(ModelNotFound) as raised:
        fetch("gs://models/nothing-here", options)

    message = str(raised.value)
    assert "gs://models/nothing-here/manifest.json" in message and "python -m model publish" in message
    assert _cached_files(options) == []


def test_fetch_missing_bucket_names_bucket(server, options):
    with pytest.raises(ModelNotFound, match="bucket gs://no-such-bucket does not exist"):
        fetch("gs://no-such-bucket/iris", options)


def test_fetch_rotten_artifact_bytes_fail_checksum_and_cache_nothing(server, model_dir, options):
    publish.publish(model_dir, "gs://models/iris")
    good = (model_dir / "model.skops").read_bytes()
    server.rot("models", "iris/model.skops", bytes(b ^ 0xFF for b in good))

    with pytest.raises(ModelIntegrityError) as raised:
        fetch("gs://models/iris", options)

    assert "gs://models/iris" in str(raised.value) and "checksum" in str(raised.value)
    assert _cached_files(options) == []


def test_fetch_artifact_not_matching_manifest_sha256_caches_nothing(server, model_dir, options):
    bucket = _bucket(server)
    artifact = bucket.blob("iris/model.skops")
    artifact.upload_from_filename(model_dir / "model.skops")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["artifact"].update(generation=artifact.generation, sha256="0" * 64)
    bucket.blob("iris/manifest.json").upload_from_string(json.dumps(manifest))

    with pytest.raises(ModelIntegrityError, match="expects 0000"):
        fetch("gs://models/iris", options)

    assert _cached_files(options) == []


def test_fetch_artifact_overwritten_after_publish_asks_to_publish_again(server, trained, options):
    published = publish.publish(trained("logreg"), "gs://models/iris")
    _bucket(server).blob("iris/model.skops").upload_from_string(b"someone else's bytes")

    with pytest.raises(ModelIntegrityError) as raised:
        fetch("gs://models/iris", options)

    assert f"gs://models/iris/model.skops#{published['artifact']['generation']}" in str(raised.value)
    assert "publish again" in str(raised.value)


def test_fetch_permission_denied_names_the_role(server, trained, options):
    publish.publish(trained("logreg"), "gs://models/iris")
    server.deny()

    with pytest.raises(SourceUnavailable) as raised:
        fetch("gs://models/iris", options)

    message = str(raised.value)
    assert "gs://models/iris" in message and "403" in message and "roles/storage.objectViewer" in message


def test_fetch_server_down_fails_within_deadline(monkeypatch, options):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")
    gcs.reset_client()
    deadline = 3.0

    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as raised:
        fetch("gs://models/iris", FetchOptions(options.cache_dir, deadline))
    elapsed = time.monotonic() - started

    assert elapsed < deadline + 1.0
    assert "gs://models/iris" in str(raised.value) and "Connection refused" in str(raised.value)
    gcs.reset_client()


def test_fetch_stalled_server_fails_within_deadline(server, trained, options):
    publish.publish(trained("logreg"), "gs://models/iris")
    server.stall()
    deadline = 3.0

    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as raised:
        fetch("gs://models/iris", FetchOptions(options.cache_dir, deadline))
    elapsed = time.monotonic() - started

    assert elapsed < deadline + 1.0
    assert "gs://models/iris" in str(raised.value) and "timed out" in str(raised.value)


def test_fetch_trickling_download_stops_after_the_deadline(server, trained, options):
    published = publish.publish(trained("logreg"), "gs://models/iris")
    full_download_s = published["artifact"]["size"] / 2048
    server.trickle()
    deadline = 3.0

    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="deadline passed") as raised:
        fetch("gs://models/iris", FetchOptions(options.cache_dir, deadline))
    elapsed = time.monotonic() - started

    # Checked between the library's 8 KiB chunks: stops within one chunk (4 s here) of the deadline.
    assert elapsed < deadline + 4.5 < full_download_s
    assert "gs://models/iris" in str(raised.value)
    assert _cached_files(options) == []


def test_fetch_recovers_once_each_fault_is_mended(server, trained, options):
    with pytest.raises(ModelNotFound):
        fetch("gs://models/iris", options)
    publish.publish(trained("logreg"), "gs://models/iris")
    server.deny()
    with pytest.raises(SourceUnavailable):
        fetch("gs://models/iris", options)
    server.mend()

    fetched = fetch("gs://models/iris", options)

    assert (fetched.path / "model.skops").is_file()


def test_fetch_reuses_cached_download(server, trained, options):
    publish.publish(trained("logreg"), "gs://models/iris")

    first = fetch("gs://models/iris", options)
    second = fetch("gs://models/iris", options)

    assert first == second
    assert server.downloads == {"iris/examples.jsonl": 1, "iris/manifest.json": 1, "iris/model.skops": 1}


def test_fetch_concurrent_first_calls_download_once(server, trained, options):
    publish.publish(trained("logreg"), "gs://models/iris")
    gate = threading.Barrier(8)

    def first_fetch(_):
        gate.wait()
        return fetch("gs://models/iris", options)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(first_fetch, range(8)))

    assert len({r.path for r in results}) == 1
    assert server.downloads == {"iris/examples.jsonl": 1, "iris/manifest.json": 1, "iris/model.skops": 1}


def test_fetch_bare_artifact_returns_the_single_file(server, trained, tmp_path, options):
    import joblib
    import skops.io

    artifact = trained("logreg") / "model.skops"
    estimator = skops.io.load(artifact, trusted=skops.io.get_untrusted_types(file=artifact))
    joblib.dump(estimator, tmp_path / "model.joblib")
    blob = _bucket(server).blob("vertex/model/model.joblib")
    blob.upload_from_filename(tmp_path / "model.joblib")

    fetched = fetch("gs://models/vertex/model/model.joblib", options)

    assert fetched.path.name == "model.joblib"
    assert fetched.path.read_bytes() == (tmp_path / "model.joblib").read_bytes()
    assert fetched.details["generation"] == blob.generation


@pytest.mark.parametrize("uri", ["gs://models/vertex/model", "gs://models/vertex/model/"])
def test_fetch_vertex_model_directory_finds_its_joblib_with_or_without_slash(server, trained, tmp_path, options, uri):
    import joblib
    import skops.io

    artifact = trained("logreg") / "model.skops"
    joblib.dump(skops.io.load(artifact, trusted=skops.io.get_untrusted_types(file=artifact)), tmp_path / "model.joblib")
    _bucket(server).blob("vertex/model/model.joblib").upload_from_filename(tmp_path / "model.joblib")
    _bucket(server).blob("vertex/model/other/model.pkl").upload_from_string(b"a deeper folder is not looked at")

    fetched = fetch(uri, options)

    assert fetched.path.name == "model.joblib"
    assert fetched.path.read_bytes() == (tmp_path / "model.joblib").read_bytes()


@pytest.mark.parametrize("uri", ["gs://models/vertex/iris", "gs://models/vertex/iris/"])
def test_fetch_published_directory_with_or_without_slash(server, trained, options, uri):
    publish.publish(trained("logreg"), "gs://models/vertex/iris")

    assert sorted(p.name for p in fetch(uri, options).path.iterdir()) == ["examples.jsonl", "manifest.json", "model.skops"]


def test_fetch_directory_with_two_pickles_and_no_manifest_names_both(server, options):
    for name in ("model.joblib", "model.pkl"):
        _bucket(server).blob(f"vertex/two/{name}").upload_from_string(b"x")

    with pytest.raises(ModelIntegrityError, match="several pickle files .model.joblib, model.pkl."):
        fetch("gs://models/vertex/two/", options)


def test_client_is_created_once_per_process(server):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        clients = set(map(id, pool.map(lambda _: gcs.client(), range(8))))

    assert len(clients) == 1


def _child_sees_no_client(queue):
    queue.put(gcs_client._client is None)


def test_client_is_not_inherited_across_fork(server):
    assert gcs.client() is not None
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_sees_no_client, args=(queue,))
    child.start()
    child.join(30)

    assert queue.get(timeout=5) is True


# Through the real function: functions-framework + main.py, with MODEL_URI=gs://...

FAST_RETRY = {"MODEL_WARMUP": "false", "MODEL_FETCH_TIMEOUT_S": "3", "MODEL_RETRY_BACKOFF_S": "0.2",
              "MODEL_RETRY_BACKOFF_MAX_S": "0.5"}


def _predict(client):
    return client.post("/predict", json={"features": IRIS_ROW})


def _unavailable_message(response) -> str:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    return response.json()["error"]["message"]


def _after_backoff(client):
    """The first request once the function's back-off (at most MODEL_RETRY_BACKOFF_MAX_S) has passed."""
    time.sleep(0.6)
    return _predict(client)


def test_function_predicts_with_the_model_published_to_gcs(server, make_client, trained):
    published = publish.publish(trained("logreg"), "gs://models/iris")
    client = make_client(MODEL_URI="gs://models/iris", **FAST_RETRY)

    response = _predict(client)
    metadata = client.get("/").json()

    assert response.status_code == 200
    assert response.json() == {"predictions": [0], "model": {"name": "iris", "version": "1"}}
    assert metadata["source"]["uri"] == "gs://models/iris"
    assert metadata["source"]["generation"] == published["generation"]
    assert metadata["source"]["artifact_generation"] == published["artifact"]["generation"]


def test_function_serves_the_pinned_generation(server, make_client, trained):
    first = publish.publish(trained("logreg"), "gs://models/iris")
    client = make_client(MODEL_URI="gs://models/iris", MODEL_GENERATION=first["generation"], **FAST_RETRY)

    assert _predict(client).status_code == 200
    assert client.get("/").json()["source"]["generation"] == first["generation"]


def _missing_object(server, model_dir):
    return "gs://models/iris", "no such object", lambda: publish.publish(model_dir, "gs://models/iris")


def _missing_bucket(server, model_dir):
    def mend():
        server.create_bucket("late-bucket")
        publish.publish(model_dir, "gs://late-bucket/iris")

    return "gs://late-bucket/iris", "bucket gs://late-bucket does not exist", mend


def _rotten_bytes(server, model_dir):
    publish.publish(model_dir, "gs://models/iris")
    server.rot("models", "iris/model.skops", b"\0" * (model_dir / "model.skops").stat().st_size)
    return "gs://models/iris", "checksum", lambda: publish.publish(model_dir, "gs://models/iris")


def _manifest_mismatch(server, model_dir):
    bucket = storage.Client(project="test").bucket("models")
    bucket.blob("iris/model.skops").upload_from_filename(model_dir / "model.skops")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["artifact"]["sha256"] = "f" * 64
    bucket.blob("iris/manifest.json").upload_from_string(json.dumps(manifest))
    return "gs://models/iris", "SHA-256", lambda: publish.publish(model_dir, "gs://models/iris")


def _permission_denied(server, model_dir):
    publish.publish(model_dir, "gs://models/iris")
    server.deny()
    return "gs://models/iris", "roles/storage.objectViewer", server.mend


def _stalled(server, model_dir):
    publish.publish(model_dir, "gs://models/iris")
    server.stall()
    return "gs://models/iris", "timed out", server.mend


@pytest.mark.parametrize("fault", [_missing_object, _missing_bucket, _rotten_bytes, _manifest_mismatch,
                                   _permission_denied, _stalled], ids=lambda f: f.__name__.strip("_"))
def test_function_answers_503_naming_uri_and_cause_then_recovers_without_restart(
        fault, server, make_client, model_dir):
    uri, cause, mend = fault(server, model_dir)
    client = make_client(MODEL_URI=uri, **FAST_RETRY)

    started = time.monotonic()
    message = _unavailable_message(_predict(client))
    assert time.monotonic() - started < 3 + 1.0
    assert uri in message and cause in message
    mend()
    response = _after_backoff(client)

    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == [0]


def test_function_recovers_once_the_storage_server_comes_up(tmp_path, monkeypatch, make_client, model_dir):
    port = free_port()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    gcs.reset_client()
    client = make_client(MODEL_URI="gs://models/iris", **FAST_RETRY)

    started = time.monotonic()
    message = _unavailable_message(_predict(client))
    assert time.monotonic() - started < 3 + 1.0
    assert "gs://models/iris" in message and "Connection refused" in message
    late = StorageServer(tmp_path / "late-data", port=port).start()
    try:
        publish.publish(model_dir, "gs://models/iris")
        response = _after_backoff(client)
    finally:
        late.stop()
        gcs.reset_client()

    assert response.status_code == 200, response.text


def test_server_process_concurrent_first_requests_download_once(server, start_server, trained):
    published = publish.publish(trained("logreg"), "gs://models/iris")
    function = start_server(MODEL_URI="gs://models/iris", STORAGE_EMULATOR_HOST=server.url, **FAST_RETRY)
    responses = simultaneous_predictions(function.url, 16, timeout=30)

    assert [r.status_code for r in responses] == [200] * 16
    assert server.downloads == {"iris/examples.jsonl": 1, "iris/manifest.json": 1, "iris/model.skops": 1}
    source = requests.get(function.url + "/", timeout=5).json()["source"]
    assert source["generation"] == published["generation"]


def test_server_process_warm_up_loads_from_gcs_and_logs_the_generation(server, start_server, trained):
    published = publish.publish(trained("logreg"), "gs://models/iris")
    function = start_server(MODEL_URI="gs://models/iris", STORAGE_EMULATOR_HOST=server.url, MODEL_WARMUP="true")

    function.wait_for_log("model loaded")

    loaded = next(json.loads(line) for line in function.log_text().splitlines() if "model loaded" in line)
    assert loaded["source"]["generation"] == published["generation"]
    assert requests.get(function.url + "/v2/health/ready", timeout=5).status_code == 200
    assert server.downloads == {"iris/examples.jsonl": 1, "iris/manifest.json": 1, "iris/model.skops": 1}

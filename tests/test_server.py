"""The real `functions-framework --target=predict` process, over HTTP on 127.0.0.1.

Covers what only a real server shows: the model loads once under many concurrent first requests,
the warm-up loads it in the worker (not gunicorn's master) without traffic, and the KServe and Triton
clients work against the V1/V2 routes.
"""

import asyncio
import json
import time

import numpy as np
import pytest
import requests

from tests.conftest import IRIS_FEATURES, IRIS_ROW, simultaneous_predictions

CONCURRENT = 32


def loaded_events(server) -> list[dict]:
    lines = [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "model_loaded"]


@pytest.mark.parametrize("warmup", ["true", "false"])
def test_concurrent_first_requests_cause_exactly_one_load(start_server, model_dir, warmup):
    server = start_server(MODEL_URI=model_dir, MODEL_WARMUP=warmup)
    if warmup == "false":
        time.sleep(1.0)
        assert loaded_events(server) == [], "with MODEL_WARMUP=false nothing may load before a request"
    responses = simultaneous_predictions(server.url, CONCURRENT)
    assert [r.status_code for r in responses] == [200] * CONCURRENT
    assert all(r.json()["predictions"] == [0] for r in responses)
    server.wait_for_log('"event": "model_loaded"')
    events = loaded_events(server)
    assert len(events) == 1, events
    assert events[0]["pid"] != server.proc.pid, "the model must load in a worker, not in gunicorn's master"


def test_warmup_makes_the_worker_ready_without_traffic(start_server, model_dir):
    server = start_server(MODEL_URI=model_dir)
    server.wait_for_log('"event": "model_loaded"')
    assert requests.get(server.url + "/v2/health/ready", timeout=5).json() == {"ready": True}
    assert requests.get(server.url + "/", timeout=5).json()["ready"] is True
    requests_logged = [line for line in server.log_text().splitlines() if '"logger": "request"' in line]
    assert all("/v2/health/live" in line or "/v2/health/ready" in line or "GET / " in line for line in requests_logged)


def test_liveness_answers_while_the_model_is_missing(start_server, tmp_path):
    server = start_server(MODEL_URI=tmp_path / "absent")
    assert requests.get(server.url + "/v2/health/live", timeout=5).json() == {"live": True}
    response = requests.post(server.url + "/predict", json={"features": IRIS_ROW}, timeout=30)
    assert response.status_code == 503 and "absent" in response.json()["error"]["message"]


def test_sigterm_stops_the_server(start_server, model_dir):
    server = start_server(MODEL_URI=model_dir)
    assert requests.post(server.url + "/predict", json={"features": IRIS_ROW}, timeout=60).status_code == 200
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 10


def test_kserve_client_v1_and_v2(start_server, model_dir):
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    server = start_server(MODEL_URI=model_dir)
    server.wait_for_log('"event": "model_loaded"')
    rows = np.array([IRIS_ROW, [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)

    async def run():
        v1 = InferenceRESTClient(RESTConfig(protocol="v1", timeout=60))
        v2 = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
        try:
            assert await v1.is_server_live(server.url)
            assert await v1.is_model_ready(server.url, "iris")
            v1_result = await v1.infer(server.url, {"instances": rows.tolist()}, model_name="iris")
            assert await v2.is_server_live(server.url) and await v2.is_server_ready(server.url)
            assert await v2.is_model_ready(server.url, "iris")
            tensor = InferInput(name="input-0", shape=list(rows.shape), datatype="FP32")
            tensor.set_data_from_numpy(rows, binary_data=False)
            v2_result = await v2.infer(server.url, InferRequest(model_name="iris", infer_inputs=[tensor], request_id="r1"),
                                       model_name="iris")
            return v1_result, v2_result
        finally:
            await v1.close()
            await v2.close()

    v1_result, v2_result = asyncio.run(run())
    assert v1_result["predictions"] == [0, 2]
    assert v2_result.model_name == "iris" and v2_result.id == "r1"
    assert v2_result.outputs[0].as_numpy().tolist() == [0, 2]


def test_triton_client_v2(start_server, model_dir):
    import tritonclient.http as triton

    server = start_server(MODEL_URI=model_dir)
    server.wait_for_log('"event": "model_loaded"')
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}", network_timeout=60)
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("iris")
        metadata = client.get_model_metadata("iris")
        assert [(i["name"], i["datatype"], i["shape"]) for i in metadata["inputs"]] == [
            (name, "FP64", [-1, 1]) for name in IRIS_FEATURES]
        rows = np.array([IRIS_ROW, [6.7, 3.0, 5.2, 2.3]], dtype=np.float64)
        tensor = triton.InferInput("input-0", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows, binary_data=False)
        result = client.infer("iris", [tensor], request_id="t1", outputs=[
            triton.InferRequestedOutput("predict", binary_data=False),
            triton.InferRequestedOutput("predict_proba", binary_data=False)])
        assert result.as_numpy("predict").tolist() == [0, 2]
        assert result.as_numpy("predict_proba").shape == (2, 3)
        assert result.get_response()["id"] == "t1"
        with pytest.raises(triton.InferenceServerException, match="not served here"):
            client.infer("other", [tensor])
    finally:
        client.close()

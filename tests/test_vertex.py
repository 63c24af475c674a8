"""Vertex AI's custom-container contract, through the real function: the routes and model URI Vertex sets.

Vertex starts the container with AIP_HTTP_PORT, AIP_HEALTH_ROUTE, AIP_PREDICT_ROUTE and AIP_STORAGE_URI
(the gs:// directory it copied the model's artifact to). All of it is the app's, tested here against a
real storage server and a real server process (tests/test_image.py runs the images with these variables).
"""

import time
import uuid

import pytest
from google.cloud import storage as gcs_storage

from model import publish
from service.config import ConfigError, Settings
from tests.conftest import IRIS_ROW, joblib_copy

pytestmark = pytest.mark.timeout(120)

HEALTH = "/v1/endpoints/123/deployedModels/456"
PREDICT = "/v1/endpoints/123/deployedModels/456:predict"
VERTEX = {"AIP_HEALTH_ROUTE": HEALTH, "AIP_PREDICT_ROUTE": PREDICT, "AIP_HTTP_PORT": "7080", "AIP_MODE": "PREDICTION",
          "MODEL_FETCH_TIMEOUT_S": "3", "MODEL_RETRY_BACKOFF_S": "0.2", "MODEL_RETRY_BACKOFF_MAX_S": "0.5"}


def _until_healthy(client, seconds: float = 30):
    """Polls the health route as Vertex does; returns every status seen, ending with the first 200."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append(client.get(HEALTH).status_code)
        if seen[-1] == 200:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"health route never answered 200: {seen[-5:]}")


@pytest.fixture
def vertex_dir(storage, trained, tmp_path):
    """A Vertex model directory in the bucket: a bare model.joblib, as Vertex's sklearn containers take."""
    prefix = f"vertex-{uuid.uuid4().hex[:8]}/model"
    joblib_copy(trained("logreg"), tmp_path / "model.joblib")
    gcs_storage.Client(project="test").bucket("models").blob(f"{prefix}/model.joblib").upload_from_filename(
        tmp_path / "model.joblib")
    return f"gs://models/{prefix}"


def test_vertex_health_and_predict_routes_serve_the_model_in_aip_storage_uri(make_client, vertex_dir):
    client = make_client(**VERTEX, AIP_STORAGE_URI=vertex_dir + "/", MODEL_ALLOW_PICKLE="true", MODEL_WARMUP="false")

    statuses = _until_healthy(client)
    response = client.post(PREDICT, json={"instances": [IRIS_ROW, [6.7, 3.0, 5.2, 2.3]], "parameters": {}})

    assert set(statuses[:-1]) <= {503}  # "model is loading" until the load ends, never a 200 before
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == [0, 2]
    assert client.get("/").json()["source"]["uri"] == vertex_dir + "/"


def test_vertex_predict_route_takes_probabilities_and_objects(make_client, storage, trained):
    prefix = f"gs://models/vertex-{uuid.uuid4().hex[:8]}/iris"
    publish.publish(trained("logreg"), prefix)  # a manifest + model.skops directory: no pickle opt-in needed
    client = make_client(**VERTEX, AIP_STORAGE_URI=prefix)
    _until_healthy(client)

    names = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
    body = {"instances": [dict(zip(names, IRIS_ROW))], "parameters": {"probabilities": True}}
    reply = client.post(PREDICT, json=body).json()

    assert reply["predictions"] == [0] and reply["classes"] == [0, 1, 2]
    assert sum(reply["probabilities"][0]) == pytest.approx(1.0)


def test_vertex_health_route_answers_503_naming_the_uri_while_the_model_cannot_load(make_client, storage):
    missing = f"gs://models/vertex-{uuid.uuid4().hex[:8]}/empty"
    client = make_client(**VERTEX, AIP_STORAGE_URI=missing)

    client.get(HEALTH)  # starts the load
    time.sleep(0.5)
    health = client.get(HEALTH)
    predict = client.post(PREDICT, json={"instances": [IRIS_ROW]})

    assert health.status_code == 503 and missing in health.json()["error"]["message"]
    assert predict.status_code == 503 and missing in predict.json()["error"]["message"]


def test_model_uri_wins_over_aip_storage_uri(make_client, model_dir):
    client = make_client(**VERTEX, MODEL_URI=str(model_dir), AIP_STORAGE_URI="gs://models/not-read")

    assert client.post(PREDICT, json={"instances": [IRIS_ROW]}).json()["predictions"] == [0]
    assert client.get("/").json()["source"]["uri"] == str(model_dir)


def test_server_listens_on_aip_http_port_over_port(start_server, model_dir):
    import requests

    from tests.net import free_port

    port = free_port()
    server = start_server(wait=False, AIP_HTTP_PORT=port, MODEL_URI=model_dir)
    deadline = time.monotonic() + 30
    while True:
        assert server.proc.poll() is None, server.log_text()
        try:
            answer = requests.post(f"http://127.0.0.1:{port}/predict", json={"features": IRIS_ROW}, timeout=5)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, f"nothing listens on AIP_HTTP_PORT {port}: {server.log_text()}"
            time.sleep(0.05)
    assert answer.json()["predictions"] == [0]
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/", timeout=5)  # PORT, which AIP_HTTP_PORT overrides


@pytest.mark.parametrize("value", ["http", "0", "65536"])
def test_aip_http_port_that_is_not_a_port_is_refused(value):
    with pytest.raises(ConfigError, match="AIP_HTTP_PORT"):
        Settings.from_env({"AIP_HTTP_PORT": value})


@pytest.mark.parametrize("name, value", [("AIP_HEALTH_ROUTE", "health"), ("AIP_PREDICT_ROUTE", "/p?x=1")])
def test_vertex_route_that_is_not_a_path_is_refused_naming_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})

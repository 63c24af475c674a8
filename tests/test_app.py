"""The real function app (functions-framework + main.py) driven through its test client."""

import json
import shutil

import pytest

from tests.conftest import IRIS_FEATURES, IRIS_ROW

SETOSA, VIRGINICA = IRIS_ROW, [6.7, 3.0, 5.2, 2.3]


@pytest.fixture
def client(make_client, model_dir):
    return make_client(MODEL_URI=model_dir, MODEL_WARMUP="false")


def error_of(response, code, status=None):
    assert response.status_code == code, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "status", "message"}
    assert body["error"]["code"] == code
    if status:
        assert body["error"]["status"] == status
    return body["error"]["message"]


def test_predict_features_answers_labels_and_model(client):
    response = client.post("/predict", json={"features": SETOSA})
    assert response.status_code == 200
    assert response.json() == {"predictions": [0], "model": {"name": "iris", "version": "1"}}
    assert response.headers["X-Model-Name"] == "iris" and response.headers["X-Model-Version"] == "1"


def test_predict_instances_on_root_keeps_order_and_accepts_objects(client):
    named = dict(zip(IRIS_FEATURES, VIRGINICA))
    response = client.post("/", json={"instances": [SETOSA, named, VIRGINICA]})
    assert response.json()["predictions"] == [0, 2, 2]


def test_predict_probabilities_add_classes_and_sum_to_one(client):
    body = client.post("/predict", json={"instances": [SETOSA, VIRGINICA], "parameters": {"probabilities": True}}).json()
    assert body["classes"] == [0, 1, 2]
    assert len(body["probabilities"]) == 2
    for row, label in zip(body["probabilities"], body["predictions"]):
        assert sum(row) == pytest.approx(1.0)
        assert row.index(max(row)) == label


def test_predict_string_labels_stay_strings(make_client, tmp_path):
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    names = data.target_names[data.target]
    joblib.dump(LogisticRegression(max_iter=500).fit(data.data, names), tmp_path / "model.joblib")
    client = make_client(MODEL_URI=tmp_path / "model.joblib", MODEL_ALLOW_PICKLE="true", MODEL_NAME="species")
    assert client.post("/predict", json={"features": SETOSA}).json()["predictions"] == ["setosa"]
    assert client.get("/").json()["classes"] == ["setosa", "versicolor", "virginica"]


def test_metadata_reports_model_and_revision(make_client, model_dir):
    client = make_client(MODEL_URI=model_dir, K_SERVICE="predictor", K_REVISION="predictor-00002-abc")
    client.post("/predict", json={"features": SETOSA})
    body = client.get("/").json()
    assert body["ready"] is True and body["status"] == "alive"
    assert body["name"] == "iris" and body["version"] == "1"
    assert body["features"] == IRIS_FEATURES
    assert body["classes"] == [0, 1, 2]
    assert body["revision"] == "predictor-00002-abc" and body["service"] == "predictor"
    assert body["source"]["uri"] == str(model_dir)


@pytest.mark.parametrize("body, message", [
    (b"{not json", "malformed JSON"),
    (b"[1, 2, 3]", "must be a JSON object"),
    (b'"text"', "must be a JSON object"),
    (b"{}", "exactly one of"),
    (b'{"features": [1, 2, 3, 4], "instances": [[1, 2, 3, 4]]}', "exactly one of"),
    (b'{"instances": []}', "is empty"),
    (b'{"instances": [[1, 2, 3, 4], [1, 2]]}', "row 1 has 2 values; the model expects 4 features"),
    (b'{"features": [1, 2, 3]}', "row 0 has 3 values; the model expects 4"),
    (b'{"features": 5}', '"features" must be an array'),
    (b'{"features": [1, "two", 3, 4]}', "must be a number, got string"),
    (b'{"features": [1, NaN, 3, 4]}', "is missing (null or NaN), and this model cannot take"),
    (b'{"features": [1, null, 3, 4]}', "is missing (null or NaN), and this model cannot take"),
    (b'{"features": [1, Infinity, 3, 4]}', "is infinite"),
    (b'{"features": [1, 1e400, 3, 4]}', "is infinite"),
    (b'{"instances": [{"sepal length (cm)": 1, "colour": 2}]}', "unknown feature(s) 'colour'"),
    (b'{"features": [1, 2, 3, 4], "parameters": {"probabilities": "yes"}}', "must be true or false"),
    (b'{"features": [1, 2, 3, 4], "parameters": []}', '"parameters" must be an object'),
    (b"", "request body is empty"),
])
def test_bad_requests_get_400_naming_the_problem(client, body, message):
    response = client.post("/predict", data=body, content_type="application/json")
    assert message in error_of(response, 400, "INVALID_ARGUMENT")


def test_more_rows_than_the_limit_get_400(make_client, model_dir):
    client = make_client(MODEL_URI=model_dir, MAX_ROWS="3")
    message = error_of(client.post("/predict", json={"instances": [SETOSA] * 4}), 400)
    assert "4 rows, more than the limit of 3" in message
    assert client.post("/predict", json={"instances": [SETOSA] * 3}).status_code == 200


def test_body_over_the_limit_gets_413(make_client, model_dir):
    client = make_client(MODEL_URI=model_dir, MAX_BODY_BYTES="200")
    body = json.dumps({"instances": [SETOSA] * 20}).encode()
    response = client.post("/predict", data=body, content_type="application/json")
    assert "larger than the limit of 200 bytes" in error_of(response, 413, "PAYLOAD_TOO_LARGE")


def test_explicit_non_json_content_type_gets_415(client):
    response = client.post("/predict", data="features=1", content_type="application/x-www-form-urlencoded")
    assert "application/json" in error_of(response, 415)


def test_missing_content_type_is_read_as_json(client):
    response = client.post("/predict", data=json.dumps({"features": SETOSA}))
    assert response.status_code == 200


@pytest.mark.parametrize("method, path", [("GET", "/predict"), ("PUT", "/"), ("DELETE", "/predict"),
                                          ("POST", "/v2/health/live"), ("GET", "/v2/models/iris/infer")])
def test_wrong_method_gets_405_with_allow(client, method, path):
    response = client.open(path, method=method)
    error = response.json()["error"]
    assert response.status_code == 405 and "Allow" in response.headers
    assert method in (error if isinstance(error, str) else error["message"])


@pytest.mark.parametrize("path", ["/nope", "/favicon.ico", "/robots.txt", "/v1/models", "/predict/extra"])
def test_unknown_path_gets_404_json(client, path):
    error_of(client.get(path), 404)


def test_missing_model_gets_503_naming_the_path_and_recovers(make_client, model_dir, tmp_path):
    target = tmp_path / "later"
    client = make_client(MODEL_URI=target, MODEL_RETRY_BACKOFF_S="0")
    message = error_of(client.post("/predict", json={"features": SETOSA}), 503, "UNAVAILABLE")
    assert str(target) in message and "python -m model train" in message
    body = client.get("/").json()
    assert body["ready"] is False and str(target) in body["error"]
    shutil.copytree(model_dir, target)
    assert client.post("/predict", json={"features": SETOSA}).status_code == 200


def test_failed_load_backs_off_before_trying_again(make_client, model_dir, tmp_path):
    target = tmp_path / "later"
    client = make_client(MODEL_URI=target, MODEL_RETRY_BACKOFF_S="60")
    first = client.post("/predict", json={"features": SETOSA})
    shutil.copytree(model_dir, target)
    second = client.post("/predict", json={"features": SETOSA})
    assert first.status_code == second.status_code == 503
    assert 1 <= int(second.headers["Retry-After"]) <= 60


@pytest.mark.parametrize("breakage, message", [
    ("tamper", "SHA-256"),
    ("version", "trained with scikit-learn 0.1.0"),
    ("manifest", "not valid JSON"),
])
def test_broken_model_gets_503_saying_what_is_wrong(make_client, model_dir, breakage, message):
    if breakage == "tamper":
        (model_dir / "model.skops").write_bytes(b"x" + (model_dir / "model.skops").read_bytes())
    elif breakage == "version":
        data = json.loads((model_dir / "manifest.json").read_text())
        data["framework"]["scikit-learn"] = "0.1.0"
        (model_dir / "manifest.json").write_text(json.dumps(data))
    else:
        (model_dir / "manifest.json").write_text("{")
    client = make_client(MODEL_URI=model_dir)
    assert message in error_of(client.post("/predict", json={"features": SETOSA}), 503)


def test_pickle_without_opt_in_gets_503_naming_the_switch(make_client, tmp_path):
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    joblib.dump(DecisionTreeClassifier().fit(*load_iris(return_X_y=True)), tmp_path / "model.joblib")
    client = make_client(MODEL_URI=tmp_path / "model.joblib")
    assert "MODEL_ALLOW_PICKLE=true" in error_of(client.post("/predict", json={"features": SETOSA}), 503)


def test_request_log_is_one_json_line_with_trace(make_client, model_dir, capsys):
    client = make_client(MODEL_URI=model_dir, GOOGLE_CLOUD_PROJECT="proj", K_REVISION="rev-1")
    client.post("/predict", json={"instances": [SETOSA, SETOSA]},
                headers={"X-Cloud-Trace-Context": "0123456789abcdef0123456789abcdef/123;o=1"})
    client.get("/", headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    loaded = [line for line in lines if line.get("event") == "model_loaded"]
    assert len(loaded) == 1 and loaded[0]["severity"] == "INFO" and loaded[0]["seconds"] > 0
    post, get = [line for line in lines if line.get("logger") == "request"]
    assert post["logging.googleapis.com/trace"] == "projects/proj/traces/0123456789abcdef0123456789abcdef"
    assert post["rows"] == 2 and post["status"] == 200 and post["revision"] == "rev-1" and post["latency_ms"] > 0
    assert post["severity"] == "INFO" and post["message"] == "POST /predict 200"
    assert get["logging.googleapis.com/trace"] == "projects/proj/traces/4bf92f3577b34da6a3ce929d0e0e4736"


def test_health_routes(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    not_ready = client.get("/v2/health/ready")
    assert not_ready.status_code == 503 and isinstance(not_ready.json()["error"], str)
    client.post("/predict", json={"features": SETOSA})
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/iris/ready").status_code == 200
    assert client.get("/v1/models/iris").json() == {"name": "iris", "ready": True}
    assert client.get("/v1/models/other").status_code == 404


def test_v1_predict(client):
    body = client.post("/v1/models/iris:predict", json={"instances": [SETOSA, VIRGINICA]}).json()
    assert body["predictions"] == [0, 2]
    error_of(client.post("/v1/models/iris:predict", json={"features": SETOSA}), 400)
    error_of(client.post("/v1/models/other:predict", json={"instances": [SETOSA]}), 404)


def test_v2_infer_flat_data_with_shape_and_probabilities(client):
    response = client.post("/v2/models/iris/infer", json={
        "id": "req-1", "parameters": {"x": 1},
        "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": SETOSA + VIRGINICA,
                    "parameters": {"binary_data": False}}],
        "outputs": [{"name": "predict", "parameters": {"binary_data": False}}, {"name": "predict_proba"}]})
    body = response.json()
    assert body["model_name"] == "iris" and body["id"] == "req-1"
    predict, proba = body["outputs"]
    assert predict == {"name": "predict", "shape": [2], "datatype": "INT64", "data": [0, 2]}
    assert proba["shape"] == [2, 3] and proba["datatype"] == "FP64" and len(proba["data"]) == 6


def test_v2_infer_nested_data_and_per_feature_inputs(client):
    nested = client.post("/v2/models/iris/infer", json={
        "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [SETOSA, VIRGINICA]}]}).json()
    names = IRIS_FEATURES
    tensors = [{"name": n, "shape": [2], "datatype": "FP64", "data": [SETOSA[i], VIRGINICA[i]]} for i, n in enumerate(names)]
    columns = client.post("/v2/models/iris/infer", json={"inputs": tensors}).json()
    assert nested["outputs"][0]["data"] == columns["outputs"][0]["data"] == [0, 2]


@pytest.mark.parametrize("body, message", [
    ({"inputs": []}, "non-empty"),
    ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "BYTES", "data": ["a", "b", "c", "d"]}]},
     "must be a number, got string"),
    ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "STRING", "data": ["a", "b", "c", "d"]}]}, "not supported"),
    ({"inputs": [{"name": n, "shape": [1], "datatype": "BYTES" if n == IRIS_FEATURES[0] else "FP64",
                  "data": ["a" if n == IRIS_FEATURES[0] else 1.0]} for n in IRIS_FEATURES]},
     "has datatype BYTES, but feature sepal length (cm) takes number values (datatype FP64)"),
    ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}],
      "parameters": {"content_type": "xml"}}, "content_type 'xml' is not supported"),
    ({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}, "expected [rows, 4]"),
    ({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}, "has 4 values but its shape"),
    ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32"}]}, "missing data"),
    ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
      "outputs": [{"name": "nope"}]}, "unknown output"),
])
def test_v2_errors_use_the_v2_shape(client, body, message):
    response = client.post("/v2/models/iris/infer", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_v2_metadata(client):
    body = client.get("/v2/models/iris").json()
    assert body["name"] == "iris" and body["versions"] == ["1"] and body["platform"] == "sklearn"
    assert [(i["name"], i["datatype"], i["shape"]) for i in body["inputs"]] == [(n, "FP64", [-1, 1]) for n in IRIS_FEATURES]
    assert body["parameters"] == {"content_type": "np"}
    assert body["outputs"][0] == {"name": "predict", "datatype": "INT64", "shape": [-1]}
    assert client.get("/v2/models/other").status_code == 404


def test_unexpected_failure_is_a_500_without_exception_text(make_client, model_dir, monkeypatch):
    from inference import predictor

    client = make_client(MODEL_URI=model_dir, BATCHING="false")

    def broken(self, rows, proba):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(predictor.Predictor, "_predict", broken)
    response = client.post("/predict", json={"features": SETOSA})
    assert response.status_code == 500
    assert "secret" not in response.text
    assert response.json()["error"]["status"] == "INTERNAL"


def test_a_model_that_cannot_make_its_first_prediction_never_becomes_ready(make_client, model_dir, capsys):
    from model import manifest

    (model_dir / "examples.jsonl").write_text(json.dumps({name: "not a number" for name in IRIS_FEATURES}) + "\n")
    data = json.loads((model_dir / "manifest.json").read_text())
    data["examples"] = {"file": "examples.jsonl", "rows": 1, "sha256": manifest.sha256_of(model_dir / "examples.jsonl")}
    (model_dir / "manifest.json").write_text(json.dumps(data))
    client = make_client(MODEL_URI=model_dir, MODEL_WARMUP="false")

    response = client.post("/predict", json={"features": SETOSA})

    assert "could not make its first prediction" in error_of(response, 503, "UNAVAILABLE")
    assert client.get("/v2/health/ready").status_code == 503
    failed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"model_load_failed"' in line]
    assert failed and failed[0]["reason"] == "MODEL_UNREADABLE"


def test_the_model_loaded_line_carries_a_startup_timeline(make_client, model_dir, capsys):
    client = make_client(MODEL_URI=model_dir, MODEL_WARMUP="false")
    assert client.post("/predict", json={"features": SETOSA}).status_code == 200
    loaded = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"model_loaded"' in line]
    startup = loaded[0]["startup"]
    assert set(startup) == {"fetch_s", "import_s", "verify_s", "load_s", "first_prediction_s", "total_s",
                            "since_server_start_s"}
    assert startup["total_s"] >= startup["first_prediction_s"] > 0
    assert startup["since_server_start_s"] >= startup["total_s"] - 0.01  # /proc's clock ticks: 10 ms


def test_request_lines_say_how_the_request_was_batched(client, capsys):
    assert client.post("/predict", json={"instances": [SETOSA, VIRGINICA]}).status_code == 200
    line = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"POST /predict 200"' in x][-1]
    assert (line["rows"], line["batch_rows"], line["queued_ms"]) == (2, 2, 0.0)

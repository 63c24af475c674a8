"""The models users bring, packaged and served by a real `functions-framework` process, called in every shape.

Each model is fitted in this run (tests/models.py), packaged with `python -m model package` (or served as
the bare `joblib.dump` file a notebook writes), and served by its own server. Every answer must equal the
source estimator's own `predict` on the same rows, whatever the request shape or client library.
"""

import asyncio
import concurrent.futures

import numpy as np
import pandas as pd
import pytest
import requests

from model import examples, package
from model.schema import Schema
from release import smoke
from tests import models
from tests.conftest import Server

pytestmark = pytest.mark.timeout(300)

ROWS = 24  # rows of each model's data sent per shape


def _served(tmp, name, env) -> Server:
    server = Server({"MODEL_CACHE_DIR": tmp / "cache", **env}, tmp / f"{name}.log")
    server.wait_until_listening()
    server.wait_for_log('"event": "model_loaded"')
    return server


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """name -> (server, fitted model, its rows as JSON records); every server stopped at the end."""
    tmp = tmp_path_factory.mktemp("real-models")
    churn = models.churn_pipeline()
    running = {}
    try:
        for name, fitted in (("churn", churn), ("spam", models.text_classifier()), ("prices", models.nan_regressor())):
            source = models.dump(fitted, tmp / "source", name=name)
            sample = models.write_sample(fitted, tmp / f"{name}.jsonl")
            report = package.package(source, tmp / name, sample=sample, allow_pickle=True)
            records = examples.records(fitted.rows, report.schema)[:ROWS]
            running[name] = (_served(tmp, name, {"MODEL_URI": tmp / name}), fitted, records)
        # The bare file a notebook's joblib.dump writes: no manifest, no sample.
        bare = models.dump(churn, tmp / "bare", name="churn")
        running["bare"] = (_served(tmp, "bare", {"MODEL_URI": bare, "MODEL_ALLOW_PICKLE": "true"}), churn,
                           running["churn"][2])
        yield running
    finally:
        for server, _, _ in running.values():
            server.stop()


def served_schema(server) -> Schema:
    return Schema.from_dict(requests.get(server.url + "/", timeout=10).json()["schema"])


def expected(name, fitted, records) -> list:
    """The source estimator's own answers, on the rows as a notebook would build them."""
    if name == "spam":
        return fitted.estimator.predict([r["text"] for r in records]).tolist()
    return fitted.estimator.predict(pd.DataFrame.from_records(records, columns=list(fitted.rows.columns))).tolist()


def post(server, path, body) -> requests.Response:
    return requests.post(server.url + path, json=body, timeout=60)


def answers(response) -> list:
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def same(got, want):
    """Equal labels, or for a regressor the very same floats (JSON round-trips a float64 exactly)."""
    assert got == want


@pytest.mark.parametrize("name", ["churn", "spam", "prices", "bare"])
def test_objects_keyed_by_feature_name_answer_like_the_source(servers, name):
    server, fitted, records = servers[name]
    same(answers(post(server, "/predict", {"instances": records})), expected(name, fitted, records))


@pytest.mark.parametrize("name", ["churn", "prices", "bare"])
def test_arrays_in_schema_order_with_mixed_types_answer_like_the_source(servers, name):
    server, fitted, records = servers[name]
    arrays = [list(r.values()) for r in records]
    same(answers(post(server, "/", {"instances": arrays})), expected(name, fitted, records))
    same(answers(post(server, "/predict", {"features": records[0]})), expected(name, fitted, records[:1]))


def test_a_text_model_takes_one_string_per_row(servers):
    server, fitted, _ = servers["spam"]
    texts = ["free money now", "lunch at noon?"]
    assert answers(post(server, "/predict", {"instances": texts})) == fitted.estimator.predict(texts).tolist()
    v2 = post(server, "/v2/models/spam/infer", {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES",
                                                            "data": texts}]})
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["data"] == fitted.estimator.predict(texts).tolist()


@pytest.mark.parametrize("name", ["churn", "prices"])
def test_kserve_v1_answers_like_the_source(servers, name):
    server, fitted, records = servers[name]
    same(answers(post(server, f"/v1/models/{name}:predict", {"instances": records})), expected(name, fitted, records))


def _v2_columns(schema, records) -> list[dict]:
    datatypes = {"number": "FP64", "integer": "INT64", "string": "BYTES", "boolean": "BOOL"}
    return [{"name": f.name, "shape": [len(records), 1], "datatype": datatypes[f.kind],
             "data": [r[f.name] for r in records]} for f in schema.features]


@pytest.mark.parametrize("name", ["churn", "prices", "bare"])
def test_v2_one_tensor_per_column_as_mlservers_pandas_codec_sends_answers_like_the_source(servers, name):
    server, fitted, records = servers[name]
    body = {"inputs": _v2_columns(served_schema(server), records), "parameters": {"content_type": "pd"}}
    reply = post(server, f"/v2/models/{'churn' if name == 'bare' else name}/infer", body)
    assert reply.status_code == 200, reply.text
    same(reply.json()["outputs"][0]["data"], expected(name, fitted, records))


def test_tritonclient_sends_string_and_bool_columns(servers):
    import tritonclient.http as triton

    server, fitted, records = servers["churn"]
    records = [r for r in records if all(v is not None for v in r.values())][:8]
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}", network_timeout=60)
    try:
        metadata = client.get_model_metadata("churn")
        kinds = {i["name"]: i["datatype"] for i in metadata["inputs"]}
        assert kinds == {"tenure_months": "FP64", "monthly_charges": "FP64", "contract": "BYTES", "payment": "BYTES",
                         "senior": "BOOL"}
        inputs = []
        for name, datatype in kinds.items():
            values = [r[name] for r in records]
            array = np.array(values, dtype=object if datatype == "BYTES" else (bool if datatype == "BOOL" else np.float64))
            tensor = triton.InferInput(name, [len(values), 1], datatype)
            tensor.set_data_from_numpy(array.reshape(-1, 1), binary_data=False)
            inputs.append(tensor)
        result = client.infer("churn", inputs, outputs=[triton.InferRequestedOutput("predict", binary_data=False)])
        got = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predict").tolist()]
        assert got == expected("churn", fitted, records)
    finally:
        client.close()


def test_kserve_client_v1_objects_and_v2_columns(servers):
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    server, fitted, records = servers["churn"]
    records = [r for r in records if all(v is not None for v in r.values())][:8]
    schema = served_schema(server)

    async def run():
        v1 = InferenceRESTClient(RESTConfig(protocol="v1", timeout=60))
        v2 = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
        try:
            one = await v1.infer(server.url, {"instances": records}, model_name="churn")
            tensors = []
            for column in _v2_columns(schema, records):
                tensor = InferInput(name=column["name"], shape=column["shape"], datatype=column["datatype"])
                tensor.set_data_from_numpy(np.array(column["data"], dtype=object if column["datatype"] == "BYTES"
                                                    else None).reshape(-1, 1), binary_data=False)
                tensors.append(tensor)
            two = await v2.infer(server.url, InferRequest(model_name="churn", infer_inputs=tensors,
                                                          parameters={"content_type": "pd"}), model_name="churn")
            return one, two
        finally:
            await v1.close()
            await v2.close()

    one, two = asyncio.run(run())
    want = expected("churn", fitted, records)
    assert one["predictions"] == want
    assert [v.decode() if isinstance(v, bytes) else v for v in two.outputs[0].as_numpy().tolist()] == want


def test_concurrent_single_rows_meet_in_one_dataframe_and_answer_like_unbatched(servers):
    server, fitted, records = servers["churn"]
    want = expected("churn", fitted, records)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda r: answers(post(server, "/predict", {"instances": [r]}))[0], records * 4))
    assert got == want * 4


def test_null_is_a_missing_value_where_the_model_takes_one(servers):
    server, fitted, records = servers["prices"]
    rows = [{"rooms": None, "area_m2": 80.0, "age_years": None}, {"rooms": 3.0, "area_m2": None, "age_years": 12.0}]
    same(answers(post(server, "/predict", {"instances": rows})), expected("prices", fitted, rows))


def error(response, code) -> str:
    assert response.status_code == code, response.text
    body = response.json()
    return body["error"] if isinstance(body["error"], str) else body["error"]["message"]


ROW = {"tenure_months": 3, "monthly_charges": 80.5, "contract": "month-to-month", "payment": "card", "senior": False}


def test_the_issues_own_request_now_answers(servers):
    for name in ("churn", "bare"):
        server, fitted, _ = servers[name]
        assert answers(post(server, "/predict", {"instances": [ROW]})) == expected("churn", fitted, [ROW])


@pytest.mark.parametrize("change, message", [
    ({"monthly_charges": "80.5"}, "row 0, feature 1 (monthly_charges) must be a number, got string"),
    ({"contract": None}, "row 0, feature 2 (contract) is missing (null or NaN), and this model cannot take"),
    ({"contract": "weekly"}, "row 0, feature 2 (contract) is 'weekly', a category the model does not know; "
                             "known: 'month-to-month', 'one-year', 'two-year'"),
    ({"senior": "no"}, "row 0, feature 4 (senior) must be true or false, got string"),
    ({"colour": "red"}, "row 0 has unknown feature(s) 'colour'"),
])
def test_bad_values_get_a_400_naming_row_feature_and_kind(servers, change, message):
    server, _, _ = servers["churn"]
    assert message in error(post(server, "/predict", {"instances": [{**ROW, **change}]}), 400)


def test_a_missing_column_is_a_400_naming_it_in_every_protocol(servers):
    server, _, _ = servers["churn"]
    row = {k: v for k, v in ROW.items() if k != "payment"}
    assert "row 0 is missing feature(s) 'payment'" in error(post(server, "/predict", {"instances": [row]}), 400)
    columns = [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]}
               for k, v in row.items() if k != "senior"] + [{"name": "senior", "shape": [1], "datatype": "BOOL",
                                                             "data": [False]}]
    assert "missing 'payment'" in error(post(server, "/v2/models/churn/infer", {"inputs": columns}), 400)


def test_an_unknown_category_gets_the_models_own_behaviour(servers):
    server, fitted, _ = servers["churn"]
    row = {**ROW, "payment": "crypto"}  # payment's encoder ignores unknown values
    assert answers(post(server, "/predict", {"instances": [row]})) == expected("churn", fitted, [row])


def test_a_text_model_refuses_what_is_not_a_string(servers):
    server, _, _ = servers["spam"]
    assert "row 1 must be a string (the text)" in error(post(server, "/predict", {"instances": ["ok", 5]}), 400)


def test_the_schema_is_served_in_metadata_v2_and_openapi(servers):
    server, _, _ = servers["churn"]
    info = requests.get(server.url + "/", timeout=10).json()
    features = {f["name"]: f for f in info["schema"]["features"]}
    assert info["schema"]["layout"] == "frame"
    assert features["contract"]["categories"] == ["month-to-month", "one-year", "two-year"]
    assert features["contract"]["unknown"] == "reject" and features["tenure_months"]["nullable"] is True
    assert features["senior"]["kind"] == "boolean"
    v2 = requests.get(server.url + "/v2/models/churn", timeout=10).json()
    assert v2["parameters"] == {"content_type": "pd"}
    row = requests.get(server.url + "/openapi.json", timeout=10).json()["components"]["schemas"]["Row"]["oneOf"][0]
    assert row["required"] == list(ROW) and row["additionalProperties"] is False
    assert row["properties"]["contract"]["enum"] == ["month-to-month", "one-year", "two-year"]
    assert row["properties"]["senior"] == {"type": "boolean"}
    assert row["properties"]["tenure_months"]["nullable"] is True


@pytest.mark.parametrize("name", ["churn", "spam", "prices", "bare"])
def test_the_release_smoke_test_passes_for_every_kind_of_model(servers, name):
    """`deploy.sh smoke` builds its one row from GET /'s schema, so a release of any of them passes."""
    server, fitted, _ = servers[name]
    report = smoke.check(server.url, None, wait_seconds=10)
    assert report["features"] == len(served_schema(server).features)
    if name == "prices":
        assert isinstance(report["prediction"], float)
    else:
        assert report["prediction"] in fitted.estimator.classes_.tolist()

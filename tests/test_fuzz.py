"""Fuzzing the running function: generated and mutated requests must never get a 5xx or a stray shape.

Two generators drive a real `functions-framework` process over HTTP:
- schemathesis, from `service/openapi.json`: valid and schema-violating requests for every route
  (the valid ones must also answer what the document declares);
- hypothesis, from valid bodies of the three protocols: a value swapped for something hostile (deep
  nesting, huge numbers, strings for numbers, NaN/Infinity, lone surrogates), then bytes mangled
  (duplicate keys, invalid UTF-8, truncation, empty bodies, just over the size limit), sent with
  assorted content types, by Content-Length or chunked.
Pass: no 5xx, every error body in the documented shape, and the process still up with no unhandled
error in its log. Runs are seeded and derandomized; FUZZ_EXAMPLES (default 250) scales them:
`make fuzz` runs this module with a larger count.
"""

import collections
import json
import os
import socket
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi import checks as openapi_checks

from tests.conftest import IRIS_ROW, REPO, Server

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "250"))
LIMIT = 64 * 1024  # a small MAX_BODY_BYTES keeps "just over the limit" bodies cheap to send
SCHEMA = schemathesis.openapi.from_path(REPO / "service" / "openapi.json")
NAMES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
RUN = dict(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck),
           phases=[Phase.explicit, Phase.generate])
TALLY = collections.Counter()  # status codes over the whole module, printed at the end


pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    """One real server for the module; at the end it must still be up, ready, and free of crashes."""
    tmp = tmp_path_factory.mktemp("fuzz")
    server = Server({"MODEL_URI": trained("logreg"), "MODEL_CACHE_DIR": tmp / "cache", "MAX_BODY_BYTES": LIMIT,
                     "LOG_LEVEL": "WARNING"}, tmp / "server.log")
    try:
        server.wait_until_listening()
        assert requests.post(server.url + "/predict", json={"features": IRIS_ROW}, timeout=60).status_code == 200
        yield server
        assert server.proc.poll() is None, "the server died under fuzzing"
        assert requests.get(server.url + "/v2/health/ready", timeout=10).status_code == 200
        log = server.log_text()
        assert "unhandled error" not in log and "Traceback" not in log, log[-3000:]
    finally:
        server.stop()


@pytest.fixture(scope="module", autouse=True)
def tally():
    yield
    fives = sum(n for code, n in TALLY.items() if code >= 500)
    print(f"\nfuzz: {sum(TALLY.values())} requests, 5xx: {fives}, statuses: {dict(sorted(TALLY.items()))}")


def check_reply(path: str, method: str, status: int, body: bytes) -> None:
    """No 5xx; every reply is JSON; every error is in the shape its route documents."""
    TALLY[status] += 1
    assert status < 500, (method, path, status, body[:500])
    if method == "HEAD":
        return
    doc = json.loads(body)
    if status < 400:
        return
    assert set(doc) == {"error"}, doc
    if path.startswith("/v2/"):
        assert isinstance(doc["error"], str) and doc["error"], doc
    else:
        error = doc["error"]
        assert isinstance(error, dict) and set(error) == {"code", "status", "message"}, doc
        assert error["code"] == status and error["status"].replace("_", "").isalpha() and error["message"], doc


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_fuzz_schema_requests_get_no_5xx_and_documented_shapes(server, mode):
    session = requests.Session()
    conformance = [openapi_checks.status_code_conformance, openapi_checks.content_type_conformance,
                   openapi_checks.response_schema_conformance]

    @settings(max_examples=EXAMPLES, **RUN)
    @given(case=SCHEMA.as_strategy(generation_mode=mode))
    def run(case):
        response = case.call(base_url=server.url, session=session, timeout=30)
        check_reply(requests.utils.urlparse(response.request.url).path, case.method.upper(),
                    response.status_code, response.content)
        if mode is schemathesis.GenerationMode.POSITIVE:
            # Schema-violating requests may land on other routes (a name holding "/"), so only valid
            # ones are held to the operation's declared statuses and bodies.
            case.validate_response(response, checks=conformance)

    run()


# --- hostile bodies -------------------------------------------------------------------------------

V2_FLAT = {"id": "r", "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": IRIS_ROW * 2}]}
V2_NESTED = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [IRIS_ROW]}],
             "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}
V2_COLUMNS = {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [v]} for n, v in zip(NAMES, IRIS_ROW)]}
VALID = [
    ("/predict", {"features": IRIS_ROW}),
    ("/", {"instances": [IRIS_ROW, dict(zip(NAMES, IRIS_ROW))], "parameters": {"probabilities": True}}),
    ("/v1/models/iris:predict", {"instances": [IRIS_ROW]}),
    ("/v2/models/iris/infer", V2_FLAT),
    ("/v2/models/iris/versions/1/infer", V2_NESTED),
    ("/v2/models/iris/infer", V2_COLUMNS),
]
SLOT = "\x00slot\x00"
HOSTILE = st.one_of(
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "1" * 4301, "-" + "9" * 5000, "1" * 400,
                     '"5.1"', '""', "null", "true", "[]", "{}", '"\\ud800"', '"\\u0000"', "4e-400", "-0"]),
    st.integers(1, 4000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 4000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    st.integers(-(2 ** 80), 2 ** 80).map(str),
    st.floats().map(lambda f: json.dumps(f)),
    st.text(max_size=12).map(json.dumps),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=6).map(json.dumps),
)
JSON_TYPES = ["application/json", None, "", "application/json; charset=utf-8", "text/json", "application/problem+json"]
OTHER_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
               "application/octet-stream", "*/*"]
CONTENT_TYPES = JSON_TYPES * 4 + OTHER_TYPES  # mostly JSON, so bodies get past the media-type check
BAD_BYTES = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80", b"\xf8\x88\x80\x80\x80", b"\x00", b"\xef\xbb\xbf"]


def slots(doc, path=()):
    """Every place in a JSON document a value can be swapped into."""
    yield path
    children = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in children:
        yield from slots(value, (*path, key))


def replaced(doc, path, value):
    if not path:
        return value
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[path[0]] = replaced(doc[path[0]], path[1:], value)
    return copy


@st.composite
def hostile_requests(draw):
    """(path, content type, body bytes, chunked?) from a valid request, swapped and mangled."""
    path, doc = draw(st.sampled_from(VALID))
    text = json.dumps(doc)
    if draw(st.booleans()):
        where = draw(st.sampled_from(list(slots(doc))))
        text = json.dumps(replaced(doc, where, SLOT)).replace(json.dumps(SLOT), draw(HOSTILE))
    body = text.encode()
    mangle = draw(st.sampled_from(["none", "duplicate", "utf8", "truncate", "flip", "empty", "over", "at"]))
    if mangle == "duplicate":
        key = draw(st.sampled_from(sorted(doc)))
        body = b"{" + json.dumps(key).encode() + b":" + json.dumps(doc[key]).encode() + b"," + body[1:]
    elif mangle == "utf8":
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.sampled_from(BAD_BYTES)) + body[at:]
    elif mangle == "truncate":
        body = body[:draw(st.integers(0, max(0, len(body) - 1)))]
    elif mangle == "flip":
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1:]
    elif mangle == "empty":
        body = draw(st.sampled_from([b"", b" ", b"\r\n\t "]))
    elif mangle in ("over", "at"):  # valid JSON padded to the limit, or a few bytes past it
        extra = draw(st.integers(1, 64)) if mangle == "over" else 0
        body = body + b" " * max(0, LIMIT + extra - len(body))
    return path, draw(st.sampled_from(CONTENT_TYPES)), body, draw(st.booleans())


def is_json_type(content_type) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return not media or media in ("application/json", "text/json") or media.endswith("+json")


def test_fuzz_hostile_bodies_get_no_5xx_and_documented_shapes(server):
    session = requests.Session()

    @settings(max_examples=EXAMPLES * 8, **RUN)
    @given(request=hostile_requests())
    def run(request):
        path, content_type, body, chunked = request
        headers = {} if content_type is None else {"Content-Type": content_type}
        data = iter([body[:len(body) // 2], body[len(body) // 2:]]) if chunked else body
        response = session.post(server.url + path, data=data, headers=headers, timeout=30)
        check_reply(path, "POST", response.status_code, response.content)
        if response.headers.get("Connection") == "close" or response.status_code == 413 or chunked:
            # A refused body may be left half-sent on the connection: do not reuse it.
            session.close()
        if not is_json_type(content_type):
            assert response.status_code == 415
        elif len(body) > LIMIT:
            assert response.status_code == 413
        else:
            assert response.status_code != 413

    run()


# --- regressions found by these runs --------------------------------------------------------------

@pytest.mark.parametrize("path, body", [
    ("/predict", b'{"features": [' + b"1" * 5000 + b", 1, 1, 1]}"),  # int() refuses > 4300 digits
    ("/v2/models/iris/infer", b'{"inputs": [{"name": "a", "shape": [1, 4], "datatype": [], "data": [1, 2, 3, 4]}]}'),
    ("/v2/models/iris/infer", b'{"inputs": [{"name": "a", "shape": [1, 4], "datatype": {}, "data": [1, 2, 3, 4]}]}'),
])
def test_fuzz_regression_bodies_answer_400(make_client, model_dir, path, body):
    client = make_client(MODEL_URI=model_dir, MODEL_WARMUP="false")
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 400
    check_reply(path, "POST", 400, response.content)


@pytest.mark.parametrize("kind", ["logreg", "forest"])
@pytest.mark.parametrize("value", [1e308, -1e300, 3.5e38])
def test_fuzz_regression_huge_finite_values_answer_400(make_client, trained, kind, value):
    # Finite in float64, yet past float32 (forests) or overflowing a scaler: scikit-learn raised mid-call.
    client = make_client(MODEL_URI=trained(kind), MODEL_WARMUP="false")
    response = client.post("/predict", json={"instances": [IRIS_ROW, [5.1, value, 1.4, 0.2]]})
    assert response.status_code == 400
    assert "row 1, feature 1 (sepal width (cm)) is larger in magnitude" in response.json()["error"]["message"]
    assert client.post("/predict", json={"features": [5.1, 3.4e38, 1.4, 0.2]}).status_code == 200


@pytest.mark.parametrize("path, v2", [("/v2/models/%0A", True), ("/v2/models/a%0Ab/infer", True), ("/v1/models/%0A", False)])
def test_fuzz_regression_paths_the_router_rejects_keep_their_protocols_shape(make_client, model_dir, path, v2):
    client = make_client(MODEL_URI=model_dir, MODEL_WARMUP="false")
    response = client.get(path)
    assert response.status_code == 404
    assert isinstance(response.json()["error"], str) == v2
    check_reply(path, "GET", 404, response.content)


def raw_exchange(port: int, head: bytes, body: bytes) -> bytes:
    """Sends a request, half-closes, and reads the whole answer (the server may keep the socket open)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < int(
                answer.lower().split(b"content-length: ")[1].split(b"\r\n")[0]):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


@pytest.mark.parametrize("head, body", [
    (b"Content-Length: 100\r\n", b'{"features": [5.1,'),
    (b"Transfer-Encoding: chunked\r\n", b'10\r\n{"features": [5.1,'),  # ends inside a chunk
])
def test_fuzz_truncated_bodies_on_the_wire_get_no_5xx(server, head, body):
    # The client stops sending mid-body and half-closes. uvicorn reads that as a disconnect (nobody is
    # left to answer) or, inside a chunk, as broken framing that its parser refuses with a plain 400
    # before the function runs. Whatever comes back is a 400, and the server keeps serving.
    answer = raw_exchange(server.port, b"POST /predict HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\n"
                          + head + b"\r\n", body)
    if answer:
        status = int(answer.split(b" ", 2)[1])
        assert status == 400, answer
        if b"application/json" in answer.split(b"\r\n\r\n", 1)[0].lower():
            check_reply("/predict", "POST", status, answer.split(b"\r\n\r\n", 1)[1])
    assert requests.post(server.url + "/predict", json={"features": IRIS_ROW}, timeout=30).status_code == 200


def test_fuzz_broken_chunked_framing_is_refused_by_the_server(server):
    # A chunk size that is not hex is broken HTTP: the server's parser answers 400 itself, before the
    # function runs (Cloud Run's front end refuses such requests before they reach an instance).
    answer = raw_exchange(server.port, b"POST /predict HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n", b"zz\r\n{}\r\n0\r\n\r\n")
    assert int(answer.split(b" ", 2)[1]) == 400, answer
    assert requests.post(server.url + "/predict", json={"features": IRIS_ROW}, timeout=30).status_code == 200


# --- a DataFrame model, from its own OpenAPI document ------------------------------------------------
@pytest.fixture(scope="module")
def churn_server(tmp_path_factory):
    """A real server of the mixed-type pipeline (numbers with gaps, strings with known categories, a bool)."""
    from model import package
    from tests import models

    tmp = tmp_path_factory.mktemp("fuzz-churn")
    fitted = models.churn_pipeline()
    source = models.dump(fitted, tmp, name="churn")
    package.package(source, tmp / "churn", sample=models.write_sample(fitted, tmp / "sample.jsonl"), allow_pickle=True)
    server = Server({"MODEL_URI": tmp / "churn", "MODEL_CACHE_DIR": tmp / "cache", "MAX_BODY_BYTES": LIMIT,
                     "LOG_LEVEL": "WARNING"}, tmp / "server.log")
    try:
        server.wait_until_listening()
        yield server
        assert server.proc.poll() is None, "the server died under fuzzing"
        log = server.log_text()
        assert "unhandled error" not in log and "Traceback" not in log, log[-3000:]
    finally:
        server.stop()


PREDICT_ROUTES = ("/", "/predict", "/v1/models/{name}:predict")


def _keyed_rows(body) -> bool:
    rows = body.get("instances", [body.get("features")]) if isinstance(body, dict) else None
    return isinstance(rows, list) and all(isinstance(row, dict) for row in rows)


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_fuzz_a_dataframe_model_from_its_own_document(churn_server, mode):
    """Rows generated from this model's schema (types, nulls where allowed, its categories) must all be
    answered (200) when valid, and refused with a 4xx in the documented shape when not."""
    deadline = time.monotonic() + 60
    while requests.get(churn_server.url + "/v2/health/ready", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the model did not load"
        time.sleep(0.2)
    document = requests.get(churn_server.url + "/openapi.json", timeout=10).json()
    assert document["info"]["x-model"]["name"] == "churn"
    schema = schemathesis.openapi.from_dict(document).include(method="POST", path=list(PREDICT_ROUTES))
    session = requests.Session()
    statuses = collections.Counter()

    @settings(max_examples=max(50, EXAMPLES // 2), **RUN)
    @given(case=schema.as_strategy(generation_mode=mode))
    def run(case):
        if "name" in (case.path_parameters or {}):
            case.path_parameters["name"] = "churn"
        response = case.call(base_url=churn_server.url, session=session, timeout=30)
        path = requests.utils.urlparse(response.request.url).path
        check_reply(path, "POST", response.status_code, response.content)
        statuses[response.status_code] += 1
        if mode is schemathesis.GenerationMode.POSITIVE and _keyed_rows(case.body):
            # OpenAPI 3.0 cannot say which type each position of an array row takes, so only rows keyed
            # by feature name are fully described by the document: those must all be answered.
            assert response.status_code == 200, (case.body, response.text)
            statuses["keyed"] += 1

    run()
    if mode is schemathesis.GenerationMode.POSITIVE:
        assert statuses["keyed"] >= 20, statuses
    else:
        assert statuses[400] > 0, statuses

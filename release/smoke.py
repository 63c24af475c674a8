"""The smoke test of one revision through its tag URL: ready on GET /, a 200 prediction on POST."""

import json
import os
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from release.errors import ReleaseError

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def token_for(url, gcloud, environ=os.environ):
    """SMOKE_TOKEN if set; none for a loopback URL (a local server); else gcloud's identity token."""
    if environ.get("SMOKE_TOKEN"):
        return environ["SMOKE_TOKEN"]
    if urlsplit(url).hostname in _LOOPBACK:
        return None
    return gcloud.identity_token(environ.get("SMOKE_AUDIENCE"))


def wait_seconds(environ=os.environ):
    """SMOKE_WAIT: how long a revision may take to answer ready (a cold start loads the model)."""
    return float(environ.get("SMOKE_WAIT", "60"))


def call(url, token, body=None, timeout=30.0):
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _json(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _json(error.read())
    except (urllib.error.URLError, OSError) as error:
        return None, {"error": str(getattr(error, "reason", error))}


def _json(raw):
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return {"error": "response is not JSON"}


def wait_ready(url, token, wait_seconds):
    """GET / until it answers ready (a cold start loads the model first); the last answer on failure."""
    deadline = time.monotonic() + wait_seconds
    while True:
        status, body = call(url.rstrip("/") + "/", token)
        if status == 200 and isinstance(body, dict) and body.get("ready") is True:
            return body
        if time.monotonic() >= deadline:
            raise ReleaseError(f"smoke: GET {url}/ is not ready (status {status}, body {_short(body)})")
        time.sleep(1.0)


# A value of each kind the function's schema names, for a feature without known categories.
_PLAIN = {"number": 0.0, "integer": 0, "boolean": False, "string": "smoke test"}


def sample_instance(info):
    """One valid row for the model GET / describes: a string for a text model, else an object keyed by
    feature name with a value of each feature's kind (its first category when an encoder knows them).
    Without a schema (an older function), zeros in feature order, as a numeric model takes."""
    schema = info.get("schema")
    if not isinstance(schema, dict) or not isinstance(schema.get("features"), list):
        return [0.0] * len(info["features"])
    if schema.get("layout") == "text":
        return _PLAIN["string"]
    row = {}
    for feature in schema["features"]:
        categories = feature.get("categories")
        row[feature["name"]] = categories[0] if categories else _PLAIN.get(feature.get("kind"), 0.0)
    return row


def check(url, token, wait_seconds=60.0):
    """Raises ReleaseError unless the revision is ready and answers a sample prediction."""
    info = wait_ready(url, token, wait_seconds)
    features = info.get("features")
    if not isinstance(features, list) or not features:
        raise ReleaseError(f"smoke: GET {url}/ lists no features ({_short(info)})")
    sample = {"instances": [sample_instance(info)]}
    status, body = call(url.rstrip("/") + "/predict", token, sample)
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("predictions"), list):
        raise ReleaseError(f"smoke: POST {url}/predict answered {status} {_short(body)}")
    if len(body["predictions"]) != 1:
        raise ReleaseError(f"smoke: POST {url}/predict gave {len(body['predictions'])} predictions for 1")
    return {"url": url, "model": body.get("model"), "features": len(features),
            "prediction": body["predictions"][0]}


def _short(body):
    return json.dumps(body)[:200]

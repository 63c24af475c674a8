"""`python -m client` against the real function: plain calls, retries while the model is missing,
giving up, timeouts, and ID tokens.

For tokens, two stand-ins keep Google's behaviour: a token endpoint that checks the service account's
signed JWT grant and mints an ID token for the asked audience (as oauth2.googleapis.com does for a
service-account key), and a Cloud Run front that answers 401 without a valid token for its URL and
otherwise forwards to the real function.
"""

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import google.auth.crypt
import google.auth.jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import IRIS_ROW, REPO

AUDIENCE = "https://predictor-abc123-ew.a.run.app"
TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # what google-auth's grant names, whatever token_uri is


def run_client(*args, env=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "client", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_client_predicts_from_features_and_from_a_json_file(start_server, model_dir, tmp_path):
    server = start_server(MODEL_URI=model_dir)
    done = run_client(server.url + "/predict", "--features", *IRIS_ROW)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["predictions"] == [0]
    body = tmp_path / "v2.json"
    body.write_text(json.dumps({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64",
                                            "data": IRIS_ROW + [6.7, 3.0, 5.2, 2.3]}]}))
    done = run_client(server.url + "/v2/models/iris/infer", "--json", body)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"][0]["data"] == [0, 2]


def test_client_reports_a_client_error_without_retrying(start_server, model_dir):
    server = start_server(MODEL_URI=model_dir)
    done = run_client(server.url + "/predict", "--features", 1, 2)
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["code"] == 400
    assert "retrying" not in done.stderr


def test_client_retries_503_until_the_model_appears(start_server, model_dir, tmp_path):
    target = tmp_path / "served"
    server = start_server(MODEL_URI=target, MODEL_WARMUP="false", MODEL_RETRY_BACKOFF_S=1, MODEL_RETRY_BACKOFF_MAX_S=1)
    client = subprocess.Popen([sys.executable, "-m", "client", server.url + "/predict", "--features", *map(str, IRIS_ROW),
                               "--retries", "20", "--max-wait", "2"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)
    assert client.poll() is None, "the client must still be retrying"
    shutil.copytree(model_dir, tmp_path / "staging")
    (tmp_path / "staging").rename(target)  # the model appears at once, whole
    out, err = client.communicate(timeout=60)
    assert client.returncode == 0, err
    assert json.loads(out)["predictions"] == [0]
    assert "HTTP 503; retrying in 1.0s" in err  # the function's Retry-After: 1
    assert '"POST /predict 503"' in server.log_text()


def test_client_gives_up_after_its_retries_honouring_retry_after(start_server, tmp_path):
    server = start_server(MODEL_URI=tmp_path / "absent", MODEL_WARMUP="false")
    started = time.monotonic()
    done = run_client(server.url + "/predict", "--features", *IRIS_ROW, "--retries", "2")
    seconds = time.monotonic() - started
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["status"] == "UNAVAILABLE"
    assert done.stderr.count("HTTP 503; retrying") == 2
    assert seconds >= 2, "two waits of Retry-After (at least 1 s each)"


def test_client_times_out_on_a_server_that_never_answers():
    with socket.socket() as silent:  # the kernel completes the handshake; nothing ever replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        done = run_client(f"http://127.0.0.1:{silent.getsockname()[1]}/predict", "--features", *IRIS_ROW,
                          "--timeout", "1")
        seconds = time.monotonic() - started
    assert done.returncode == 2 and "timed out" in done.stderr.lower()
    assert seconds < 10


def test_client_retries_a_refused_connection_then_gives_up():
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        done = run_client(f"http://127.0.0.1:{closed.getsockname()[1]}/predict", "--features", *IRIS_ROW,
                          "--retries", "2", "--max-wait", "0.2")
    assert done.returncode == 2
    assert done.stderr.count("ConnectionError; retrying") == 2, done.stderr
    assert "refused" in done.stderr.splitlines()[-1].lower()


@pytest.mark.parametrize(("option", "value"), [("--retries", "-1"), ("--timeout", "0"), ("--max-wait", "-2")])
def test_client_refuses_bad_numbers_in_one_line(option, value):
    done = run_client("http://127.0.0.1:9/predict", "--features", *IRIS_ROW, option, value)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"python -m client: error: argument {option}: ")


# --- identity tokens ------------------------------------------------------------------------------

def rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


class GoogleStandIn(http.server.ThreadingHTTPServer):
    """POST /token: the jwt-bearer grant of a service-account key; anything else: a private Cloud Run
    service at AUDIENCE in front of `backend`."""

    def __init__(self, backend: str, account_public: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.backend, self.account_public = backend, account_public
        self.issuer_private, self.issuer_public = rsa_key()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.grants = []


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, status: int, body: bytes, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/token":
            return self._token(urllib.parse.parse_qs(data.decode()))
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = google.auth.jwt.decode(token, certs=self.server.issuer_public, audience=AUDIENCE)
        except (ValueError, google.auth.exceptions.GoogleAuthError):
            return self._answer(401, b"Your client does not have permission: missing or invalid identity token",
                                "text/html")
        forwarded = requests.post(self.server.backend + self.path, data=data, timeout=30,
                                  headers={"Content-Type": self.headers.get("Content-Type", ""),
                                           "X-Caller": claims["email"]})
        self._answer(forwarded.status_code, forwarded.content)

    def _token(self, form):
        try:
            assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
            grant = google.auth.jwt.decode(form["assertion"][0], certs=self.server.account_public,
                                           audience=TOKEN_AUDIENCE)
        except (AssertionError, KeyError, ValueError):
            return self._answer(400, b'{"error": "invalid_grant"}')
        self.server.grants.append(grant)
        now = int(time.time())
        signer = google.auth.crypt.RSASigner.from_string(self.server.issuer_private, "issuer-1")
        token = google.auth.jwt.encode(signer, {"iss": "https://accounts.google.com", "aud": grant["target_audience"],
                                                "email": grant["iss"], "sub": "1", "iat": now, "exp": now + 3600})
        self._answer(200, json.dumps({"id_token": token.decode()}).encode())


@pytest.fixture
def google_stand_in(start_server, model_dir, tmp_path):
    """(stand-in, env with a service-account key file pointing at its token endpoint)."""
    server = start_server(MODEL_URI=model_dir)
    private, public = rsa_key()
    stand_in = GoogleStandIn(server.url, public)
    thread = threading.Thread(target=stand_in.serve_forever, daemon=True)
    thread.start()
    key_file = tmp_path / "caller-key.json"  # made for this test, never in the repo
    key_file.write_text(json.dumps({
        "type": "service_account", "project_id": "demo", "private_key_id": "key-1", "private_key": private,
        "client_email": "caller@demo.iam.gserviceaccount.com", "client_id": "1", "token_uri": stand_in.url + "/token"}))
    yield stand_in, {"GOOGLE_APPLICATION_CREDENTIALS": str(key_file)}
    stand_in.shutdown()
    stand_in.server_close()


def test_client_sends_an_id_token_for_the_service_url(google_stand_in):
    stand_in, env = google_stand_in
    done = run_client(stand_in.url + "/predict", "--features", *IRIS_ROW, "--auth", "always", "--audience", AUDIENCE, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["predictions"] == [0]
    assert [g["target_audience"] for g in stand_in.grants] == [AUDIENCE]
    assert stand_in.grants[0]["iss"] == "caller@demo.iam.gserviceaccount.com"


def test_client_without_a_token_is_refused_by_a_private_service(google_stand_in):
    stand_in, env = google_stand_in
    done = run_client(stand_in.url + "/predict", "--features", *IRIS_ROW, "--no-auth", env=env)
    assert done.returncode == 1 and "HTTP 401" in done.stderr
    done = run_client(stand_in.url + "/predict", "--features", *IRIS_ROW, "--auth", "always",
                      "--audience", "https://another-service.a.run.app", env=env)
    assert done.returncode == 1 and "HTTP 401" in done.stderr


def test_client_without_credentials_says_how_to_get_them(tmp_path):
    closed = f"127.0.0.1:{socket.socket().getsockname()[1] or 9}"
    env = {"GOOGLE_APPLICATION_CREDENTIALS": "", "GCE_METADATA_HOST": closed, "GCE_METADATA_IP": closed,
           "CLOUDSDK_CONFIG": str(tmp_path / "gcloud")}  # a gcloud with no account logged in
    done = run_client(AUDIENCE + "/predict", "--features", *IRIS_ROW, env=env)
    assert done.returncode == 2
    assert "gcloud auth login" in done.stderr and "GOOGLE_APPLICATION_CREDENTIALS" in done.stderr

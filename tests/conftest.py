"""Shared fixtures: an isolated environment, models fitted into tmp_path, the real app and server."""

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.net import free_port

REPO = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(sys.executable).parent
IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
IRIS_FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """Each test starts from the same environment and leaves it untouched."""
    for name in list(os.environ):
        if name.startswith(("MODEL_", "K_", "GOOGLE_CLOUD_PROJECT", "STORAGE_EMULATOR_HOST")) or name in (
                "MAX_ROWS", "MAX_BODY_BYTES", "BATCHING", "LOG_LEVEL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "model-cache"))


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Factory: a model directory per estimator kind, fitted once per test session."""
    from model import training

    cache = {}

    def make(kind: str = "logreg") -> pathlib.Path:
        if kind not in cache:
            out = tmp_path_factory.mktemp(f"model-{kind}")
            training.train(out, kind=kind)
            cache[kind] = out
        return cache[kind]

    return make


@pytest.fixture(scope="session")
def gcloud_config(tmp_path_factory):
    """A configuration directory for the real gcloud CLI, shared by the tests that drive it."""
    from tests.fakes.release_env import gcloud_or_explain

    found, problem = gcloud_or_explain()
    if not found:
        pytest.fail(problem)
    return tmp_path_factory.mktemp("gcloud-config")


@pytest.fixture
def model_dir(trained, tmp_path):
    """A private copy of the default-kind model that a test may break."""
    import shutil

    return pathlib.Path(shutil.copytree(trained("logreg"), tmp_path / "model"))


class AppClient:
    """The real ASGI app (functions-framework + main.py) in-process, through Starlette's TestClient;
    calls return httpx responses (`.status_code`, `.headers`, `.json()`, `.text`, `.content`).

    One client keeps one event loop for its life, as a server worker does, so concurrent calls from
    test threads meet in the same micro-batcher.
    """

    def __init__(self, app):
        from starlette.testclient import TestClient

        self._client = TestClient(app, raise_server_exceptions=False)
        self._client.__enter__()

    def open(self, path, method="GET", json=None, data=None, content_type=None, headers=None):
        headers = dict(headers or {})
        if content_type is not None:
            headers["Content-Type"] = content_type
        kwargs = {"json": json} if json is not None else {}
        if data is not None:
            kwargs["content"] = data.encode() if isinstance(data, str) else data
        return self._client.request(method, path, headers=headers, **kwargs)

    def get(self, path, **kwargs):
        return self.open(path, "GET", **kwargs)

    def post(self, path, **kwargs):
        return self.open(path, "POST", **kwargs)

    def close(self):
        self._client.__exit__(None, None, None)


@pytest.fixture
def make_client(monkeypatch):
    """Factory: the real function app (functions-framework + main.py) with the given env."""
    import functions_framework

    clients = []

    def make(**env):
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        clients.append(AppClient(functions_framework.create_app(target="predict", source=str(REPO / "main.py"))))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def simultaneous_predictions(url: str, count: int, timeout: float = 120) -> list[requests.Response]:
    """`count` single-row POST /predict requests released at the same moment, as a cold start's first traffic."""
    import concurrent.futures
    import threading

    gate = threading.Barrier(count)

    def one(_):
        gate.wait()
        return requests.post(url + "/predict", json={"features": IRIS_ROW}, timeout=timeout)

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


class Server:
    """A real `functions-framework --target=predict` process on 127.0.0.1."""

    def __init__(self, env: dict, log_path: pathlib.Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        full_env = {**os.environ, **{k: str(v) for k, v in env.items()}, "PORT": str(self.port)}
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [str(BIN / "functions-framework"), "--target=predict", "--host=127.0.0.1"],
            cwd=REPO, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_until_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_text()}")
            with contextlib.suppress(requests.ConnectionError):
                requests.get(self.url + "/v2/health/live", timeout=1)
                return
            time.sleep(0.02)
        raise TimeoutError(f"server did not listen within {timeout}s: {self.log_text()}")

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not logged within {timeout}s: {self.log_text()}")
            time.sleep(0.05)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def start_server(tmp_path):
    """Factory: starts a real server with the given env; every server is stopped after the test."""
    servers = []

    def start(wait: bool = True, **env) -> Server:
        server = Server({"MODEL_CACHE_DIR": tmp_path / "cache", **env}, tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        if wait:
            server.wait_until_listening()
        return server

    yield start
    for server in servers:
        server.stop()

"""Load on the real server: a stampede of first requests, a soak that must lose nothing and leak no
memory, and bodies over the size limit refused before they are read whole.

SOAK_SECONDS (default 30) and SOAK_CONCURRENCY (default 32) size the soak; `make soak` runs it longer.
Figures are printed (run with -s to see them).
"""

import concurrent.futures
import json
import os
import pathlib
import socket
import threading
import time

import pytest
import requests

from tests.conftest import IRIS_ROW, Server, simultaneous_predictions

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "30"))
SOAK_CONCURRENCY = int(os.environ.get("SOAK_CONCURRENCY", "32"))
WARMUP_SECONDS = 5.0
DEFAULT_LIMIT = 10 * 1024 * 1024


def worker_pid(server, timeout: float = 10) -> int:
    """The one gunicorn worker (WORKERS=1) forked by the server's master process."""
    deadline = time.monotonic() + timeout
    children = pathlib.Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children")
    while time.monotonic() < deadline:
        pids = children.read_text().split()
        if pids:
            return int(pids[0])
        time.sleep(0.05)
    raise TimeoutError("no gunicorn worker appeared")


def rss_kib(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def wait_ready(server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while requests.get(server.url + "/v2/health/ready", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the model did not load"
        time.sleep(0.05)


def model_loads(server) -> int:
    return sum('"event": "model_loaded"' in line for line in server.log_text().splitlines())


def test_load_cold_process_answers_64_simultaneous_first_requests_with_one_load(start_server, model_dir):
    server = start_server(MODEL_URI=model_dir, MODEL_WARMUP="false")
    responses = simultaneous_predictions(server.url, 64)
    assert [r.status_code for r in responses] == [200] * 64
    assert all(r.json()["predictions"] == [0] for r in responses)
    server.wait_for_log('"event": "model_loaded"')
    assert model_loads(server) == 1


REQUESTS = [  # (path, body, expected status): the protocols, a batch, and refusals mixed in
    ("/predict", {"features": IRIS_ROW}, 200),
    ("/", {"instances": [IRIS_ROW] * 50, "parameters": {"probabilities": True}}, 200),
    ("/v1/models/iris:predict", {"instances": [IRIS_ROW, [6.7, 3.0, 5.2, 2.3]]}, 200),
    ("/v2/models/iris/infer", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}]}, 200),
    ("/predict", {"features": [1, 2, "x", 4]}, 400),
]


def hammer(url: str, seconds: float, concurrency: int) -> dict:
    """Keeps `concurrency` clients busy for `seconds`; counts what was sent, answered right, and lost."""
    stop = time.monotonic() + seconds
    lock = threading.Lock()
    tally = {"sent": 0, "ok": 0, "lost": 0, "wrong": 0}

    def client(k: int):
        session = requests.Session()
        i = k
        while time.monotonic() < stop:
            path, body, expected = REQUESTS[i % len(REQUESTS)]
            i += 1
            outcome = "ok"
            try:
                response = session.post(url + path, json=body, timeout=30)
                failed = "error" in response.json()
                if response.status_code != expected or failed != (expected != 200):
                    outcome = "wrong"
                    tally.setdefault("examples", []).append((path, response.status_code, response.text[:200]))
            except (requests.RequestException, ValueError):
                outcome = "lost"
            with lock:
                tally["sent"] += 1
                tally[outcome] += 1

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client, range(concurrency)))
    return tally


def test_load_soak_loses_no_request_and_keeps_memory_flat(start_server, model_dir):
    server = start_server(MODEL_URI=model_dir, LOG_LEVEL="WARNING")
    pid = worker_pid(server)
    wait_ready(server)
    # Warm-up at full concurrency first: every server thread gets its stack and malloc arena, and
    # caches fill; growth after that point is what a leak would look like.
    warm = hammer(server.url, WARMUP_SECONDS, SOAK_CONCURRENCY)
    before = rss_kib(pid)
    started = time.monotonic()
    soak = hammer(server.url, SOAK_SECONDS, SOAK_CONCURRENCY)
    elapsed = time.monotonic() - started
    after = rss_kib(pid)
    growth = (after - before) / before
    print(f"\nsoak: {soak['sent']} requests in {elapsed:.0f}s at concurrency {SOAK_CONCURRENCY} "
          f"({soak['sent'] / elapsed:.0f}/s), lost {soak['lost']}, wrong {soak['wrong']}; "
          f"worker RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB ({growth:+.2%}); warm-up {warm['sent']} requests")
    assert warm["lost"] == warm["wrong"] == 0, warm
    assert soak["lost"] == 0 and soak["wrong"] == 0 and soak["ok"] == soak["sent"] > 0, soak
    assert growth < 0.05, f"worker RSS grew {growth:.1%} over the soak"
    assert server.proc.poll() is None and worker_pid(server) == pid, "the worker must survive the soak"


def read_reply(sock: socket.socket, timeout: float) -> bytes:
    """Reads one response (headers and Content-Length body) without waiting for the connection to close."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or b"<closed>"
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def refused(sock: socket.socket, started: float) -> tuple[float, dict]:
    answer = read_reply(sock, timeout=10)
    seconds = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    return seconds, json.loads(answer.split(b"\r\n\r\n", 1)[1])


def send_over_content_length(port: int, declared: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % declared + b"[" * 65536)  # then nothing more
    return sock


def send_over_chunked(port: int, limit: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    chunk = b" " * 65536
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    for _ in range(limit // len(chunk) + 2):  # just past the limit, and no final chunk ever
        sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
    return sock


@pytest.mark.parametrize("how, size", [("content-length", DEFAULT_LIMIT + 1), ("content-length", 1 << 30),
                                       ("chunked", DEFAULT_LIMIT)])
def test_load_body_over_limit_is_refused_before_it_is_read_whole(oversize_server, how, size):
    server, pid = oversize_server
    before = rss_kib(pid)
    started = time.monotonic()
    send = send_over_content_length if how == "content-length" else send_over_chunked
    with send(server.port, size) as sock:
        seconds, body = refused(sock, started)
    print(f"\n413 for a {how} body of {size} bytes after {seconds:.3f}s")
    assert body["error"]["code"] == 413 and "MAX_BODY_BYTES" in body["error"]["message"]
    assert seconds < 5, f"413 took {seconds:.2f}s: the server waited for the body"
    # A declared length over the limit is refused unread. A chunked body declares nothing, so up to
    # the limit is read before it can be called too large: it may cost that much, never more.
    allowed_kib = 8 * 1024 + (size // 1024 if how == "chunked" else 0)
    assert rss_kib(pid) - before < allowed_kib, "refusing the body must not buffer past the limit"
    assert requests.post(server.url + "/predict", json={"features": IRIS_ROW}, timeout=10).status_code == 200


@pytest.fixture(scope="module")
def oversize_server(trained, tmp_path_factory):
    """One server (default MAX_BODY_BYTES) for the oversized-body cases, and its worker's pid."""
    tmp = tmp_path_factory.mktemp("oversize")
    server = Server({"MODEL_URI": trained("logreg"), "MODEL_CACHE_DIR": tmp / "cache"}, tmp / "server.log")
    try:
        server.wait_until_listening()
        wait_ready(server)
        yield server, worker_pid(server)
    finally:
        server.stop()

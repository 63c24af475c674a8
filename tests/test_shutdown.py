"""SIGTERM, as Cloud Run sends it (and kills 10 s later): the server stops accepting, finishes what
it accepted, and exits in time, under load and when idle.

A request counts as accepted when the function logged it; each carries its own trace id, so the test
can check that every logged request reached its client as a complete, correct response.
"""

import concurrent.futures
import json
import signal
import threading
import time
import uuid

import requests

from tests.conftest import IRIS_ROW

CLOUD_RUN_KILL_S = 10
BATCH = {"instances": [IRIS_ROW] * 2000}  # big enough that requests are in flight at any moment


def logged_traces(server) -> set[str]:
    traces = set()
    for line in server.log_text().splitlines():
        if line.startswith("{") and '"logger": "request"' in line:
            trace = json.loads(line).get("logging.googleapis.com/trace")
            if trace:
                traces.add(trace)
    return traces


def test_shutdown_under_load_answers_every_accepted_request_and_exits_in_time(start_server, model_dir):
    server = start_server(MODEL_URI=model_dir)
    assert requests.post(server.url + "/predict", json={"features": IRIS_ROW}, timeout=60).status_code == 200
    answered, refused, broken = set(), [], []
    in_flight_at_term = []
    lock = threading.Lock()
    term_sent = threading.Event()

    def client(_):
        session = requests.Session()
        while True:
            trace = uuid.uuid4().hex
            began_before_term = not term_sent.is_set()
            try:
                response = session.post(server.url + "/predict", json=BATCH, timeout=30,
                                        headers={"X-Cloud-Trace-Context": f"{trace}/1;o=1"})
            except requests.ConnectionError as e:
                # Refused or reset before the function saw it: not accepted. Stop once the server is going.
                with lock:
                    refused.append(repr(e))
                if term_sent.is_set():
                    return
                continue
            except requests.RequestException as e:  # a response cut short
                with lock:
                    broken.append(repr(e))
                return
            with lock:
                if response.status_code == 200 and len(response.json()["predictions"]) == 2000:
                    answered.add(trace)
                    if began_before_term and term_sent.is_set():
                        in_flight_at_term.append(trace)
                else:
                    broken.append((response.status_code, response.text[:200]))

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        clients = [pool.submit(client, k) for k in range(16)]
        time.sleep(3)
        server.proc.send_signal(signal.SIGTERM)
        term_sent.set()
        started = time.monotonic()
        code = server.proc.wait(timeout=CLOUD_RUN_KILL_S + 5)
        drain = time.monotonic() - started
        for future in clients:
            future.result(timeout=30)
    accepted = logged_traces(server)
    print(f"\nshutdown under load: exit {code} after {drain:.2f}s; {len(accepted)} requests accepted, "
          f"{len(answered)} answered, {len(in_flight_at_term)} finished after SIGTERM, {len(refused)} refused, "
          f"{len(broken)} broken")
    assert code == 0
    assert drain < CLOUD_RUN_KILL_S
    assert broken == []
    assert accepted and accepted <= answered, f"accepted but unanswered: {sorted(accepted - answered)[:5]}"


def test_shutdown_when_idle_is_quick(start_server, model_dir):
    server = start_server(MODEL_URI=model_dir)
    server.wait_for_log('"event": "model_loaded"')
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(timeout=CLOUD_RUN_KILL_S)
    seconds = time.monotonic() - started
    print(f"\nshutdown when idle: exit {code} after {seconds:.2f}s")
    assert code == 0 and seconds < 3

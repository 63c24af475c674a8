"""Cloud Run's front end for the fake: the service URL and each tag URL, on 127.0.0.1.

The service URL splits requests by the served traffic table (status.traffic), weighted at random per
request as Cloud Run does; a tag URL reaches the revision carrying that tag. Requests go to the
revision's local process (cloud_run_instances.py); a revision with no ready instance answers 503.
Every request served is recorded for the Monitoring stand-in, per revision, with its status and
latency, so metrics describe the traffic that really flowed.

Tests control failures here, at the front, with `fault(revision, status=..., share=..., delay_s=...)`:
a share of the revision's requests answered with that status, or each delayed. The front is where
Cloud Run itself would see a crashing or overloaded container, and it keeps the function's code
untouched while giving the canary watch real traffic to judge.
"""

import http.client
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Not passed through: hop-by-hop headers, and those this server writes itself.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer",
               "host", "content-length", "date", "server"}


class _Listener(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    front = None
    service = None
    tag = None

    def log_message(self, *args):
        pass

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        started = time.perf_counter()
        revision = self.front.route(self.service, self.tag)
        if revision is None:
            status, headers, data = 404, {"Content-Type": "text/html; charset=UTF-8"}, \
                b"<html><body><h1>Error: Page not found</h1></body></html>"
        else:
            status, headers, data = self.front.forward(revision, self.command, self.path, self.headers, body)
            self.front.metrics.record(self.service, revision, status, (time.perf_counter() - started) * 1000)
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve


class Front:
    """Listeners for a fake Cloud Run's URLs, created on first use and kept for the fake's life."""

    def __init__(self, state, instances, metrics):
        self.state = state
        self.instances = instances
        self.metrics = metrics
        self.faults = {}  # revision -> {"status": int|None, "share": float, "delay_s": float}
        self._servers = {}  # (service, tag or None) -> server
        self._lock = threading.Lock()

    def url(self, service, tag=None):
        key = (service, tag)
        with self._lock:
            server = self._servers.get(key)
            if server is None:
                handler = type("Listener", (_Listener,), {"front": self, "service": service, "tag": tag})
                server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
                server.daemon_threads = True
                threading.Thread(target=server.serve_forever, daemon=True).start()
                self._servers[key] = server
        return f"http://127.0.0.1:{server.server_address[1]}"

    def fault(self, revision, status=None, share=1.0, delay_s=0.0):
        """From now on, `share` of `revision`'s requests get `status` (if given), each after `delay_s`."""
        self.faults[revision] = {"status": status, "share": share, "delay_s": delay_s}

    def clear_faults(self):
        self.faults.clear()

    def route(self, service, tag):
        if tag is not None:
            return self.state.tags(service).get(tag) if service in self.state.services else None
        table = self.state.traffic(service) if service in self.state.services else {}
        if not table:
            return None
        revisions = sorted(table)
        return random.choices(revisions, weights=[table[r] for r in revisions])[0]

    def forward(self, revision, method, path, headers, body):
        fault = self.faults.get(revision)
        if fault:
            if fault["delay_s"]:
                time.sleep(fault["delay_s"])
            if fault["status"] and random.random() < fault["share"]:
                return fault["status"], {"Content-Type": "application/json"}, json.dumps(
                    {"error": {"code": fault["status"], "message": "injected by the test at the front"}}).encode()
        port = self.instances.port(revision)
        if port is None:
            return 503, {"Content-Type": "text/html; charset=UTF-8"}, \
                b"<html><body><h1>Service Unavailable</h1></body></html>"
        forwarded = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request(method, path, body=body or None, headers=forwarded)
            answer = connection.getresponse()
            return answer.status, dict(answer.getheaders()), answer.read()
        except OSError:
            return 503, {"Content-Type": "text/html; charset=UTF-8"}, \
                b"<html><body><h1>Service Unavailable</h1></body></html>"
        finally:
            connection.close()

    def stop(self):
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
        for server in servers:
            server.shutdown()
            server.server_close()

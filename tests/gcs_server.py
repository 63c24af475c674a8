"""A Cloud Storage server for tests: gcp-storage-emulator on 127.0.0.1, behind a relay that can fail.

The emulator speaks the GCS JSON API (real hashes, generations, X-Goog-Hash on downloads) but knows no
IAM and never hangs. The relay in front of it forwards every request unchanged, counts media
downloads, and on demand answers like Cloud Storage does when the caller lacks a role (403 with the
JSON error body) or stops answering (a stalled connection). Objects live on disk under `data_dir`,
so a test can rot an object's bytes behind the server's back, as a failing disk would.
"""

import collections
import http.client
import http.server
import json
import pathlib
import threading
import urllib.parse

from gcp_storage_emulator import settings
from gcp_storage_emulator.server import create_server

from tests.net import free_port

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}
DENIED_BODY = {"error": {
    "code": 403,
    "message": "caller does not have storage.objects.get access to the Google Cloud Storage object. "
               "Permission 'storage.objects.get' denied on resource (or it may not exist).",
    "errors": [{"domain": "global", "reason": "forbidden",
                "message": "caller does not have storage.objects.get access to the Google Cloud Storage object."}],
}}


class StorageServer:
    """Start with `start()`, always `stop()`: the emulator's thread is not a daemon."""

    def __init__(self, data_dir: pathlib.Path, buckets=("models",), port: int = 0):
        self.data_dir = pathlib.Path(data_dir)
        self.port = port  # of the relay, the address clients use; 0 picks a free one
        self.mode = "serve"  # see deny(), stall(), mend()
        self.downloads = collections.Counter()  # object name -> media downloads served
        self._buckets = buckets
        self._release = threading.Event()
        self._emulator = self._relay = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._relay.server_address[1]}"

    def start(self) -> "StorageServer":
        self._emulator_port = free_port()
        self._emulator = create_server("127.0.0.1", self._emulator_port, in_memory=False, data_dir=str(self.data_dir))
        self._emulator.start()
        for name in self._buckets:
            self.create_bucket(name)
        self._relay = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._relay.daemon_threads = True
        threading.Thread(target=self._relay.serve_forever, name="gcs-relay", daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._relay is not None:
            self._relay.shutdown()
            self._relay.server_close()
        if self._emulator is not None:
            self._emulator.stop()

    def create_bucket(self, name: str) -> None:
        status, body = self.request("POST", "/storage/v1/b?project=test", {"name": name})
        assert status == 200, (status, body)

    def deny(self) -> None:
        """From now on every request gets the 403 a caller without roles/storage.objectViewer gets."""
        self.mode = "deny"

    def stall(self) -> None:
        """From now on connections are accepted and never answered."""
        self._release.clear()
        self.mode = "stall"

    def trickle(self) -> None:
        """From now on downloads are answered at 2 KiB/s: never idle long enough for a read timeout."""
        self._release.clear()
        self.mode = "trickle"

    def mend(self) -> None:
        self.mode = "serve"
        self._release.set()

    def request(self, method: str, path: str, body=None) -> tuple[int, bytes]:
        """One request straight to the emulator (for setting up state the way a console user would)."""
        conn = http.client.HTTPConnection("127.0.0.1", self._emulator_port, timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def rot(self, bucket: str, name: str, data: bytes) -> None:
        """Replaces an object's stored bytes without telling the server (its hashes stay the old ones)."""
        path = self.data_dir / settings.STORAGE_DIR / bucket / name
        assert path.is_file(), f"no stored object at {path}"
        path.write_bytes(data)

    def _handler(self):
        server = self

        class Relay(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keeps test output quiet
                pass

            def _relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if server.mode == "stall":
                    server._release.wait(60)
                    return
                if server.mode == "deny":
                    return self._answer(403, {"Content-Type": "application/json"}, json.dumps(DENIED_BODY).encode())
                url = urllib.parse.urlsplit(self.path)
                media = "alt=media" in url.query
                if media:
                    server.downloads[urllib.parse.unquote(url.path.rsplit("/o/", 1)[-1])] += 1
                conn = http.client.HTTPConnection("127.0.0.1", server._emulator_port, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    response = conn.getresponse()
                    slow = media and server.mode == "trickle"
                    self._answer(response.status, dict(response.getheaders()), response.read(), slow)
                finally:
                    conn.close()

            def _answer(self, status, headers, data, slow=False):
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                step = 512 if slow else len(data) or 1
                for start in range(0, len(data), step):
                    if slow and server._release.wait(0.25):
                        return
                    self.wfile.write(data[start:start + step])
                    self.wfile.flush()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

        return Relay

"""A Cloud Run Admin API (Knative serving v1) stand-in on 127.0.0.1, reached by gcloud as an HTTP proxy.

The real `gcloud` CLI is pointed at it through CLOUDSDK_PROXY_* and CLOUDSDK_API_ENDPOINT_OVERRIDES_*
(see `FakeCloudRun.gcloud_env`); the state and its rules live in cloud_run_state.py.
"""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.cloud_run_state import ApiError, CloudRunState

__all__ = ["ApiError", "CloudRunState", "FakeCloudRun"]

_KNATIVE = re.compile(r"^/apis/serving\.knative\.dev/v1/namespaces/([^/]+)/(services|revisions)(?:/([^/:]+))?$")
_SERVICE_USAGE = re.compile(r"^/v1/projects/[^/]+/services/[^/]+$")
_IAM = re.compile(r"^/v1/projects/([^/]+)/locations/[^/]+/services/([^/:]+):(getIamPolicy|setIamPolicy|testIamPermissions)$")


class _Handler(BaseHTTPRequestHandler):
    """Answers proxied requests (absolute URIs) for any host: gcloud prefixes the region to it."""

    protocol_version = "HTTP/1.1"
    state: CloudRunState = None

    def log_message(self, *args):  # keep pytest output clean; the state keeps its own log
        pass

    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _route(self, method):
        url = urlsplit(self.path)
        path = unquote(url.path)
        state = self.state
        with state.lock:
            state.requests.append((method, path))
            try:
                self._reply(200, self._dispatch(method, url.hostname or "", path, parse_qs(url.query), state))
            except ApiError as error:
                self._reply(error.code, error.body())

    def _dispatch(self, method, host, path, query, state):
        # Other Google APIs a test registers (FakeCloudRun.add_api) answer first; None means "not mine".
        for api in state.apis:
            answer = api(method, host, path, query, self._body if method in ("POST", "PUT", "PATCH") else dict)
            if answer is not None:
                return answer
        if _SERVICE_USAGE.match(path) and method == "GET":
            return {"name": path, "state": "ENABLED"}
        iam = _IAM.match(path)
        if iam:
            return state.iam(*iam.groups(), self._body() if method == "POST" else {})
        match = _KNATIVE.match(path)
        if not match or match.group(1) != state.project:
            raise ApiError(404, f"The requested URL {path} was not found on this server.")
        _, kind, name = match.groups()
        if kind == "services":
            if method == "GET" and name:
                return state.get_service(name)
            if method == "POST" and not name:
                return state.create_service(self._body())
            if method == "PUT" and name:
                return state.replace_service(name, self._body())
        if kind == "revisions" and method == "GET":
            if name:
                return state.get_revision(name)
            selector = (query.get("labelSelector") or [""])[0]
            wanted = selector.split("=", 1)[1].strip() if "=" in selector else None
            return state.list_revisions(wanted)
        raise ApiError(404, f"{method} {path} is not supported.")

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_PUT(self):
        self._route("PUT")

    def do_PATCH(self):
        self._route("PATCH")

    def do_DELETE(self):
        self._route("DELETE")


class FakeCloudRun:
    """Runs a CloudRunState behind a proxy server on 127.0.0.1 in a background thread."""

    def __init__(self, project="demo-project", region="europe-west1"):
        self.state = CloudRunState(project, region)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self):
        return self.server.server_address[1]

    def add_api(self, api):
        """Registers `api(method, host, path, query, read_body) -> answer or None` for another Google API.

        Every request goes through the registered APIs first (under the state's lock), then Cloud Run.
        `read_body()` returns the request's JSON body; raising ApiError answers that error.
        """
        self.state.apis.append(api)
        return api

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def gcloud_env(self, config_dir):
        """Env vars that send the real gcloud CLI here, with no credentials and no prompts."""
        return {
            "CLOUDSDK_CONFIG": str(config_dir),
            "CLOUDSDK_CORE_PROJECT": self.state.project,
            "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN": "http://runfake/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE": "http://serviceusage-fake/",
            "CLOUDSDK_PROXY_TYPE": "http",
            "CLOUDSDK_PROXY_ADDRESS": "127.0.0.1",
            "CLOUDSDK_PROXY_PORT": str(self.port),
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        }

"""A Cloud Run Admin API (Knative serving v1) stand-in on 127.0.0.1, reached by gcloud as an HTTP proxy.

The real `gcloud` CLI is pointed at it through CLOUDSDK_PROXY_* and CLOUDSDK_API_ENDPOINT_OVERRIDES_*
(see `FakeCloudRun.gcloud_env`); the state and its rules live in cloud_run_state.py. Each revision
runs as a local process of the function (cloud_run_instances.py) behind the service and tag URLs
(cloud_run_front.py); its output feeds a Cloud Logging stand-in (logging_api.py) and the requests
the front serves feed a Cloud Monitoring stand-in (monitoring_api.py), both answering through the
same proxy.
"""

import json
import re
import secrets
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes import logging_api, monitoring_api
from tests.fakes.cloud_run_front import Front
from tests.fakes.cloud_run_instances import Instances
from tests.fakes.cloud_run_state import CloudRunState
from tests.fakes.google_api import ApiError
from tests.fakes.logging_api import LoggingApi, LogStore
from tests.fakes.monitoring_api import MonitoringApi, RequestMetrics

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
            extra = {"headers": self.headers} if getattr(api, "wants_headers", False) else {}
            answer = api(method, host, path, query, self._body if method in ("POST", "PUT", "PATCH") else dict,
                         **extra)
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
    """Runs a CloudRunState behind a proxy server on 127.0.0.1 in a background thread.

    `logs` (LogStore) holds what the revisions wrote; `metrics` (RequestMetrics, one point per
    `metrics_period_s`; Cloud Run's is 60 s) what the front served; `front.fault(...)` makes a
    revision fail or slow down. `platform_env` is added to every revision's environment (e.g. a
    storage emulator's address). Revision output is kept under `workdir` (a temporary directory,
    removed at stop, unless given).
    """

    def __init__(self, project="demo-project", region="europe-west1", workdir=None, platform_env=None,
                 metrics_period_s=1.0):
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="cloud-run-fake-"))
        self.logs = LogStore(project)
        self.metrics = RequestMetrics(project, region, period_s=metrics_period_s)
        self.instances = Instances(project, region, self.logs, self.workdir, platform_env)
        self.state = CloudRunState(project, region, runtime=self.instances)
        self.front = Front(self.state, self.instances, self.metrics)
        self.state.front = self.front
        self.access_token = secrets.token_urlsafe(16)
        self.token_file = self.workdir / "access-token"
        self.token_file.write_text(self.access_token)
        self.monitoring = self.add_api(MonitoringApi(self.metrics, self.access_token))
        self.logging = self.add_api(LoggingApi(self.logs))
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self):
        return self.server.server_address[1]

    def add_api(self, api):
        """Registers `api(method, host, path, query, read_body) -> answer or None` for another Google API.

        Every request goes through the registered APIs first (under the state's lock), then Cloud Run.
        `read_body()` returns the request's JSON body; raising ApiError answers that error. An api
        with a true `wants_headers` attribute is also given `headers=` (the request's headers).
        """
        self.state.apis.append(api)
        return api

    def start(self):
        self.thread.start()
        return self

    def snapshot(self):
        """What the Cloud Run and Logging APIs keep, for `restore` to put back."""
        return {"state": self.state.snapshot(), "logs": self.logs.snapshot()}

    def restore(self, snapshot):
        self.state.restore(snapshot["state"])
        self.logs.restore(snapshot["logs"])

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.front.stop()
        self.instances.stop_all()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def gcloud_env(self, config_dir):
        """Env vars that send the real gcloud CLI here, with no credentials and no prompts."""
        return {
            "CLOUDSDK_CONFIG": str(config_dir),
            "CLOUDSDK_CORE_PROJECT": self.state.project,
            "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN": "http://runfake/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE": "http://serviceusage-fake/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING": f"http://{logging_api.HOST}/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING": f"http://{monitoring_api.HOST}/",
            # what `gcloud auth print-access-token` prints; the Monitoring stand-in wants it
            "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(self.token_file),
            "CLOUDSDK_PROXY_TYPE": "http",
            "CLOUDSDK_PROXY_ADDRESS": "127.0.0.1",
            "CLOUDSDK_PROXY_PORT": str(self.port),
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        }

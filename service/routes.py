"""Dispatching a request to its route and turning the outcome into a JSON reply and one log line.

Framework-neutral: it sees the method, path, headers and a body reader, so the HTTP edge in
`main.py` stays a few lines and tests can drive every route through the real function.
"""

import asyncio
import dataclasses
import functools
import inspect
import json
import logging
import pathlib
import re
import time

from model.errors import ModelLoadError
from service import errors, logs, parsing, protocols
from service.errors import HttpError, NotFound, ServiceUnavailable
from service.predictor import Predictor

log = logging.getLogger("request")
OPENAPI_PATH = pathlib.Path(__file__).with_name("openapi.json")


@functools.cache
def _openapi_document() -> dict:
    """The published HTTP contract (service/openapi.json), read once."""
    return json.loads(OPENAPI_PATH.read_text())


@dataclasses.dataclass
class Reply:
    status: int
    body: dict
    headers: dict = dataclasses.field(default_factory=dict)
    rows: int = 0

    def encode(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()


class FunctionApp:
    def __init__(self, settings, holder):
        self._settings = settings
        self._holder = holder
        self._request_log = logs.RequestLog(settings.log_level, settings.revision, settings.service)
        self._predictor: Predictor | None = None
        model = r"/(?P<name>[^/:]+)"
        version = r"(?:/versions/[^/]+)?"
        self._routes = [
            (re.compile(r"/"), {"GET": self._metadata, "POST": self._predict_plain}),
            (re.compile(r"/predict"), {"POST": self._predict_plain}),
            (re.compile(r"/openapi.json"), {"GET": self._openapi}),
            (re.compile(r"/v1/models" + model), {"GET": self._model_ready}),
            (re.compile(r"/v1/models" + model + ":predict"), {"POST": self._predict_v1}),
            (re.compile(r"/v2/health/live"), {"GET": self._live}),
            (re.compile(r"/v2/health/ready"), {"GET": self._ready}),
            (re.compile(r"/v2"), {"GET": self._v2_server}),
            (re.compile(r"/v2/models" + model + version), {"GET": self._v2_model}),
            (re.compile(r"/v2/models" + model + version + "/ready"), {"GET": self._model_ready}),
            (re.compile(r"/v2/models" + model + version + "/infer"), {"POST": self._predict_v2}),
        ]

    async def handle(self, method: str, path: str, headers, content_length: int | None, receive) -> Reply:
        """The reply to one request; `await receive()` gives the body's next chunk (b"" at its end)."""
        started = time.perf_counter()
        v2 = path.startswith("/v2/")
        try:
            reply = await self._dispatch(method, path, headers, content_length, receive)
        except HttpError as e:
            reply = Reply(e.code, e.body(v2), e.headers)
        except Exception:
            log.exception("unhandled error", extra={"path": path})
            e = errors.Internal()
            reply = Reply(e.code, e.body(v2))
        severity = "WARNING" if reply.status >= 500 else "INFO"
        if severity == "WARNING" or self._request_log.enabled:
            self._log_request(severity, method, path, headers, reply, time.perf_counter() - started)
        return reply

    def _log_request(self, severity, method, path, headers, reply, seconds) -> None:
        self._request_log.write(severity, f"{method} {path} {reply.status}", {
            "httpRequest": {"requestMethod": method, "requestUrl": path, "status": reply.status,
                            "latency": f"{seconds:.6f}s", "userAgent": headers.get("User-Agent", "")},
            "status": reply.status, "rows": reply.rows, "latency_ms": round(seconds * 1000, 3),
            **logs.trace_fields(headers, self._settings.project)})

    async def _dispatch(self, method, path, headers, content_length, receive) -> Reply:
        method = "GET" if method == "HEAD" else method
        for pattern, handlers in self._routes:
            match = pattern.fullmatch(path)
            if match:
                handler = handlers.get(method)
                if handler is None:
                    raise errors.MethodNotAllowed(method, tuple(handlers))
                if method != "POST":
                    reply = handler(**match.groupdict())
                    return await reply if inspect.isawaitable(reply) else reply
                parsing.check_content_type(headers.get("Content-Type"))
                body = await parsing.read_body(receive, content_length, self._settings.max_body_bytes)
                return await handler(parsing.parse_json(body), **match.groupdict())
        raise NotFound(f"no route for {path}; try GET / for the model, POST /predict to predict")

    async def _model(self, name: str | None = None):
        """The loaded model; a request that comes before the load ends waits for it off the event loop."""
        try:
            model = self._holder.model or await asyncio.get_running_loop().run_in_executor(None, self._holder.get)
        except ModelLoadError as e:
            retry = max(1, round(self._holder.retry_after()))
            raise ServiceUnavailable(f"model not available: {e}", {"Retry-After": str(retry)}) from None
        if name is not None and name != model.name:
            raise NotFound(f"model {name!r} is not served here; this function serves {model.name!r}")
        return model

    def _predictor_for(self, model) -> Predictor:
        # Runs on the event loop's one thread only, so no lock is needed around the swap.
        if self._predictor is None or self._predictor.model is not model:
            self._predictor = Predictor(model, self._settings.batching, max(1024, self._settings.max_rows))
        return self._predictor

    async def _predict_plain(self, body):
        model = await self._model()
        rows, proba = protocols.plain_rows(body, model, self._settings.max_rows)
        labels, probs = await self._predictor_for(model)(rows, proba)
        return Reply(200, protocols.plain_response(model, labels, probs), self._model_headers(model), len(labels))

    async def _predict_v1(self, body, name):
        model = await self._model(name)
        if not isinstance(body, dict) or "instances" not in body:
            raise errors.BadRequest('KServe V1 requests must be a JSON object with "instances"')
        rows, proba = protocols.plain_rows(body, model, self._settings.max_rows)
        labels, probs = await self._predictor_for(model)(rows, proba)
        return Reply(200, protocols.plain_response(model, labels, probs), self._model_headers(model), len(labels))

    async def _predict_v2(self, body, name):
        model = await self._model(name)
        rows, proba, outputs = protocols.v2_rows(body, model, self._settings.max_rows)
        labels, probs = await self._predictor_for(model)(rows, proba)
        return Reply(200, protocols.v2_response(model, labels, probs, outputs, body), self._model_headers(model), len(labels))

    @staticmethod
    def _model_headers(model) -> dict:
        return {"X-Model-Name": model.name, "X-Model-Version": model.version}

    def _metadata(self):
        model = self._holder.model
        body = {"status": "alive", "ready": model is not None, "service": self._settings.service,
                "revision": self._settings.revision}
        if model is None:
            self._holder.start_background_load()
            error = self._holder.last_error
            body.update({"name": None, "version": None, "features": None, "classes": None})
            if error is not None:
                body["error"] = str(error)
            return Reply(200, body)
        body.update({"name": model.name, "version": model.version, "features": model.features,
                     "classes": model.classes, "task": model.task, "format": model.format,
                     "sha256": model.sha256, "trained_with": model.trained_with, "source": self._holder.source})
        return Reply(200, body, self._model_headers(model))

    def _openapi(self):
        return Reply(200, _openapi_document())

    def _live(self):
        return Reply(200, {"live": True})

    def _ready(self):
        if self._holder.model is not None:
            return Reply(200, {"ready": True})
        self._holder.start_background_load()
        error = self._holder.last_error
        raise ServiceUnavailable(f"model not ready: {error}" if error else "model is loading")

    def _v2_server(self):
        return Reply(200, {"name": "sklearn-function", "version": "1", "extensions": []})

    async def _v2_model(self, name):
        return Reply(200, protocols.v2_metadata(await self._model(name)))

    async def _model_ready(self, name):
        """KServe V1 `GET /v1/models/<name>` and V2 `GET /v2/models/<name>/ready` answer alike."""
        self._ready()
        await self._model(name)
        return Reply(200, {"name": name, "ready": True})

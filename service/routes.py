"""Dispatching a request to its route and turning the outcome into a JSON reply and one log line.

Framework-neutral: it sees the method, path, headers and a body reader, so the HTTP edge in
`main.py` stays a few lines and tests can drive every route through the real function.
Every handler is a coroutine taking the parsed JSON body (None for GET) and the path's parameters.
"""

import asyncio
import dataclasses
import functools
import json
import logging
import re
import time

from inference.errors import InvalidInput
from inference.predictor import Predictor
from model.errors import ModelLoadError
from service import errors, logs, openapi, parsing, protocols
from service.errors import BadRequest, HttpError, NotFound, ServiceUnavailable

log = logging.getLogger("request")


def is_v2(path: str) -> bool:
    """Open Inference Protocol (V2) paths answer errors in that protocol's shape."""
    return path == "/v2" or path.startswith("/v2/")


@dataclasses.dataclass
class Reply:
    status: int
    body: dict
    headers: dict = dataclasses.field(default_factory=dict)
    log_fields: dict = dataclasses.field(default_factory=dict)  # added to the request's log line

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
        plain = functools.partial(self._predict, protocol="plain")
        # Vertex AI names its own health and predict routes; they come first, so they win over ours.
        self._routes = [(re.compile(re.escape(route)), handlers) for route, handlers in (
            (settings.health_route, {"GET": self._ready}), (settings.predict_route, {"POST": plain})) if route]
        self._routes += [
            (re.compile(r"/"), {"GET": self._metadata, "POST": plain}),
            (re.compile(r"/predict"), {"POST": plain}),
            (re.compile(r"/openapi.json"), {"GET": self._openapi}),
            (re.compile(r"/v1/models" + model), {"GET": self._model_ready}),
            (re.compile(r"/v1/models" + model + ":predict"), {"POST": functools.partial(self._predict, protocol="v1")}),
            (re.compile(r"/v2/health/live"), {"GET": self._live}),
            (re.compile(r"/v2/health/ready"), {"GET": self._ready}),
            (re.compile(r"/v2"), {"GET": self._v2_server}),
            (re.compile(r"/v2/models" + model + version), {"GET": self._v2_model}),
            (re.compile(r"/v2/models" + model + version + "/ready"), {"GET": self._model_ready}),
            (re.compile(r"/v2/models" + model + version + "/infer"), {"POST": functools.partial(self._predict, protocol="v2")}),
        ]

    async def handle(self, method: str, path: str, headers, content_length: int | None, receive) -> Reply:
        """The reply to one request; `await receive()` gives the body's next chunk (b"" at its end)."""
        started = time.perf_counter()
        v2 = is_v2(path)
        try:
            reply = await self._dispatch(method, path, headers, content_length, receive)
        except InvalidInput as e:
            reply = Reply(400, BadRequest(e.message).body(v2))
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
            "status": reply.status, "rows": 0, **reply.log_fields, "latency_ms": round(seconds * 1000, 3),
            **logs.trace_fields(headers, self._settings.project)})

    async def _dispatch(self, method, path, headers, content_length, receive) -> Reply:
        method = "GET" if method == "HEAD" else method
        for pattern, handlers in self._routes:
            match = pattern.fullmatch(path)
            if match:
                handler = handlers.get(method)
                if handler is None:
                    raise errors.MethodNotAllowed(method, tuple(handlers))
                body = None
                if method == "POST":
                    parsing.check_content_type(headers.get("Content-Type"))
                    body = parsing.parse_json(
                        await parsing.read_body(receive, content_length, self._settings.max_body_bytes))
                return await handler(body, **match.groupdict())
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
            # A merged call holds at most MAX_ROWS rows, and never fewer than 1,024 (one request alone may
            # carry MAX_ROWS rows, so a smaller cap would only stop small requests from sharing a call).
            self._predictor = Predictor(model, self._settings.batching, max(1024, self._settings.max_rows))
        return self._predictor

    async def _predict(self, body, name=None, *, protocol: str) -> Reply:
        """POST /predict and / (plain, Vertex AI), KServe V1 and V2 `infer`: one path, three shapes."""
        model = await self._model(name)
        max_rows = self._settings.max_rows
        if protocol == "v2":
            rows, proba, outputs = protocols.v2_rows(body, model, max_rows)
        else:
            if protocol == "v1" and (not isinstance(body, dict) or "instances" not in body):
                raise BadRequest('KServe V1 requests must be a JSON object with "instances"')
            rows, proba = protocols.plain_rows(body, model, max_rows)
        outcome = await self._predictor_for(model)(rows, proba)
        reply = (protocols.v2_response(model, outcome, outputs, body) if protocol == "v2"
                 else protocols.plain_response(model, outcome))
        return Reply(200, reply, self._model_headers(model), {
            "rows": rows.count, "batch_rows": outcome.batch_rows, "queued_ms": outcome.queued_ms})

    @staticmethod
    def _model_headers(model) -> dict:
        return {"X-Model-Name": model.name, "X-Model-Version": model.version}

    async def _metadata(self, body):
        model = self._holder.model
        info = {"status": "alive", "ready": model is not None, "service": self._settings.service,
                "revision": self._settings.revision}
        if model is None:
            self._holder.start_background_load()
            error = self._holder.last_error
            info.update({"name": None, "version": None, "features": None, "classes": None})
            if error is not None:
                info["error"] = str(error)
            return Reply(200, info)
        info.update({"name": model.name, "version": model.version, "features": model.features,
                     "classes": model.classes, "task": model.task, "format": model.format,
                     "schema": model.schema.to_dict(), "sha256": model.sha256, "trained_with": model.trained_with,
                     "source": self._holder.source})
        return Reply(200, info, self._model_headers(model))

    async def _openapi(self, body):
        return Reply(200, openapi.document(self._holder.model))

    async def _live(self, body):
        return Reply(200, {"live": True})

    async def _ready(self, body):
        """200 once the model is loaded and has made its first prediction; 503 (with the load error) until then."""
        if self._holder.model is not None:
            return Reply(200, {"ready": True})
        self._holder.start_background_load()
        error = self._holder.last_error
        raise ServiceUnavailable(f"model not ready: {error}" if error else "model is loading")

    async def _v2_server(self, body):
        return Reply(200, {"name": "sklearn-function", "version": "1", "extensions": []})

    async def _v2_model(self, body, name):
        return Reply(200, protocols.v2_metadata(await self._model(name)))

    async def _model_ready(self, body, name):
        """KServe V1 `GET /v1/models/<name>` and V2 `GET /v2/models/<name>/ready` answer alike."""
        await self._ready(body)
        await self._model(name)
        return Reply(200, {"name": name, "ready": True})

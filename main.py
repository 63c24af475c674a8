"""The function: one functions-framework HTTP entrypoint, `predict`, serving a scikit-learn model.

Run it with `functions-framework --target=predict` (port from $PORT, default 8080). Every route
(`POST /predict`, `GET /`, KServe V1 and Open Inference Protocol V2) is served here and dispatched by
`service.routes`; the model loads lazily and once (see `model.loader`). Settings: `service/config.py`.
"""

import flask
import functions_framework
import werkzeug.exceptions

from model.loader import ModelHolder
from service import config, errors, logs, routes, server_tuning, warmup

SETTINGS = config.Settings.from_env()
logs.configure(SETTINGS.log_level, SETTINGS.revision, SETTINGS.service)
HOLDER = ModelHolder(SETTINGS)
APP = routes.FunctionApp(SETTINGS, HOLDER)
warmup.install(HOLDER, SETTINGS.warmup)
server_tuning.apply(SETTINGS.graceful_timeout_s)


def _json(status: int, body: bytes, headers: dict) -> flask.Response:
    if headers.get("Connection") == "close":
        # The request body was refused unread (413) or could not be read. functions-framework's
        # after-request hook reads (and buffers) the whole body of any non-streamed response before
        # sending it, so the refusal goes out as a stream, with its length, to skip that hook.
        return flask.Response(iter([body]), status=status, mimetype="application/json",
                              headers={**headers, "Content-Length": str(len(body))})
    return flask.Response(body, status=status, headers=headers, mimetype="application/json")


@functions_framework.http
def predict(request: flask.Request) -> flask.Response:
    """Serves every route of the model; see the README for the contract."""
    reply = APP.handle(request.method, request.path, request.headers, request.content_length, request.stream.read)
    return _json(reply.status, reply.encode(), reply.headers)


@functions_framework.errorhandler(werkzeug.exceptions.HTTPException)
def _framework_error(e: werkzeug.exceptions.HTTPException) -> flask.Response:
    """Errors raised by the framework before `predict` runs (e.g. /favicon.ico) get our JSON shape too."""
    error = errors.HttpError(e.description or e.name)
    error.code, error.status = e.code or 500, (e.name or "ERROR").upper().replace(" ", "_")
    # Paths the framework's router rejects (e.g. a newline in /v2/models/%0A) keep their protocol's shape.
    v2 = flask.request.path.startswith("/v2/")
    return _json(error.code, routes.Reply(error.code, error.body(v2)).encode(), {})


@functions_framework.errorhandler(Exception)
def _crash(e: Exception) -> flask.Response:
    """Last resort: a 500 whose body carries no exception text (the log line does)."""
    routes.log.exception("unhandled error outside the router")
    error = errors.Internal()
    return _json(500, routes.Reply(500, error.body()).encode(), {})

"""The function: one functions-framework HTTP entrypoint, `predict`, serving a scikit-learn model.

Run it with `functions-framework --target=predict` (port from $PORT, default 8080). `predict` is an
ASGI function (`functions_framework.aio.http`), so the same command serves it with gunicorn and
uvicorn's worker: the event loop keeps reading requests while the model works in its own thread,
which is what lets concurrent requests share one model call. Every route (`POST /predict`, `GET /`,
KServe V1 and Open Inference Protocol V2) is dispatched by `service.routes`; the model loads lazily
and once (`model.loader`), makes its first prediction (`inference.warmup`), and runs in `inference`.
Settings: `service/config.py`.
"""

import functions_framework.aio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from inference.warmup import warm_up
from model.loader import ModelHolder
from service import config, logs, preload, routes, server_tuning

SETTINGS = config.Settings.from_env()
logs.configure(SETTINGS.log_level, SETTINGS.revision, SETTINGS.service)
HOLDER = ModelHolder(SETTINGS, warm_up=warm_up)
APP = routes.FunctionApp(SETTINGS, HOLDER)
preload.install(HOLDER, SETTINGS.warmup)
server_tuning.apply(SETTINGS.graceful_timeout_s, SETTINGS.http_port)


@functions_framework.aio.http
async def predict(request: Request) -> Response:
    """Serves every route of the model; see the README for the contract."""
    length = request.headers.get("content-length")
    chunks = request.stream()

    async def receive() -> bytes:
        try:
            return await anext(chunks, b"")
        except ClientDisconnect:  # gone mid-body; an OSError is what the router reads as a cut-off body
            raise ConnectionResetError("the client disconnected before sending the whole body") from None

    reply = await APP.handle(request.method, request.url.path, request.headers,
                             int(length) if length and length.isdigit() else None, receive)
    return Response(reply.encode(), reply.status, reply.headers, media_type="application/json")

"""Server settings that functions-framework does not expose, applied before its server starts.

`functions-framework --target=predict` stays the command; these are the only places where this
project reaches into functions-framework's private internals, all listed in `INTERNALS` and checked
by tests/test_server_tuning.py, so an upgrade that moves one fails that test by name instead of
silently changing how the server behaves. Importing main.py happens in gunicorn's master before
functions-framework builds its server, which is why these hooks work from there.
- Cloud Run sends SIGTERM and kills the instance 10 s later; gunicorn's default graceful timeout is
  30 s. GRACEFUL_TIMEOUT_S (default 8) bounds how long in-flight requests may finish after SIGTERM,
  so the server exits on its own inside Cloud Run's window.
- Vertex AI names the port in AIP_HTTP_PORT, which takes precedence over PORT (and --port), so the
  image's command needs no shell to choose between them.
- gunicorn's control socket lives in $HOME, which the image's user has not got; the server needs no
  runtime control, so it is off rather than logging an error at every start.
- functions-framework answers /favicon.ico and /robots.txt itself, and its router refuses a few
  requests before `predict` sees them (a method outside its list, a path its pattern does not
  match), all in plain text; they get the function's JSON error shape like every other error.
"""

import importlib
import json

# (module, attribute path) of every private functions-framework internal patched here.
INTERNALS = (
    ("functions_framework._http.gunicorn", "GunicornApplication.load_config"),
    ("functions_framework._http.gunicorn", "UvicornApplication.load_config"),
    ("functions_framework.aio", "_create_asgi_app_with_function"),
)


def missing_internals() -> list[str]:
    """The internals in INTERNALS that the installed functions-framework no longer has."""
    missing = []
    for module_name, path in INTERNALS:
        try:
            target = importlib.import_module(module_name)
            for name in path.split("."):
                target = getattr(target, name)
        except (ImportError, AttributeError):
            missing.append(f"{module_name}.{path}")
    return missing


def apply(graceful_timeout_s: float, port: int | None = None) -> None:
    missing = missing_internals()
    if missing:
        from importlib.metadata import version

        raise RuntimeError(f"functions-framework {version('functions-framework')} lacks {', '.join(missing)}, "
                           "which service/server_tuning.py patches; pin the version it was written for")
    from functions_framework._http import gunicorn as ff_gunicorn

    for application in (ff_gunicorn.GunicornApplication, ff_gunicorn.UvicornApplication):
        _tune(application, graceful_timeout_s, port)
    _json_framework_errors()


def _tune(application, graceful_timeout_s: float, port: int | None) -> None:
    original = application.load_config
    if getattr(original, "tuned", False):
        return

    def load_config(self):
        original(self)
        # gunicorn accepts whole seconds only (a float fails its validation and the server exits).
        self.cfg.set("graceful_timeout", max(1, int(graceful_timeout_s)))
        self.cfg.set("control_socket_disable", True)
        if port is not None:
            host = self.cfg.bind[0].rpartition(":")[0]
            self.cfg.set("bind", f"{host}:{port}")

    load_config.tuned, load_config.original = True, original
    application.load_config = load_config


def _json_framework_errors() -> None:
    from functions_framework import aio

    original = aio._create_asgi_app_with_function
    if getattr(original, "tuned", False):
        return

    def create(*args, **kwargs):
        from starlette.exceptions import HTTPException

        app = original(*args, **kwargs)
        app.add_exception_handler(HTTPException, _json_http_error)
        return app

    create.tuned, create.original = True, original
    # Looked up when functions-framework builds the app, which is after main.py is imported.
    aio._create_asgi_app_with_function = create


async def _json_http_error(request, exc):
    from starlette.responses import Response

    from service.errors import HttpError
    from service.routes import is_v2

    error = HttpError(str(exc.detail).lower())
    error.code, error.status = exc.status_code, str(exc.detail).upper().replace(" ", "_")
    body = error.body(v2=is_v2(request.url.path))
    return Response(json.dumps(body).encode(), exc.status_code, exc.headers, media_type="application/json")

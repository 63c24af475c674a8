"""Gunicorn settings that functions-framework does not expose, applied before its server starts.

Cloud Run sends SIGTERM and kills the instance 10 s later; gunicorn's default graceful timeout is
30 s. GRACEFUL_TIMEOUT_S (default 8) bounds how long in-flight requests may finish after SIGTERM, so
the server exits on its own inside Cloud Run's window. Importing main.py happens in the master before
functions-framework builds its gunicorn application, which is why this hook works from there.
"""


def apply(graceful_timeout_s: float) -> None:
    try:
        from functions_framework._http import gunicorn as ff_gunicorn
    except ImportError:  # no gunicorn (e.g. Windows): the debug server has no such setting
        return
    original = ff_gunicorn.GunicornApplication.load_config
    if getattr(original, "tuned", False):
        return

    def load_config(self):
        original(self)
        # gunicorn accepts whole seconds only (a float fails its validation and the server exits).
        self.cfg.set("graceful_timeout", max(1, int(graceful_timeout_s)))
        # gunicorn's control socket lives in $HOME, which the image's user has not got; the server
        # needs no runtime control, so leave it off rather than log an error at every start.
        self.cfg.set("control_socket_disable", True)

    load_config.tuned = True
    ff_gunicorn.GunicornApplication.load_config = load_config

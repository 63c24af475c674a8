"""The one model of this process: loaded lazily, once, thread-safely, and retried after failures.

`ModelHolder.get()` returns the loaded model, loading it first if needed; concurrent callers wait for
the same load. A failed load is remembered only for a back-off period (doubling from
MODEL_RETRY_BACKOFF_S up to MODEL_RETRY_BACKOFF_MAX_S) so a broken source is not hammered; after it the
next caller tries again, and a mended source is picked up without a restart.
"""

import contextlib
import gc
import logging
import os
import threading
import time

from model import artifact, baked, sources
from model.errors import ModelLoadError
from model.timeline import Timeline

log = logging.getLogger("model")


@contextlib.contextmanager
def _collector_paused():
    """No cyclic garbage collection while the libraries are imported and the model is built.

    Both make objects by the hundred thousand that all stay alive, so every collection in between
    walks a growing heap for nothing (~10% of a load).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class ModelHolder:
    def __init__(self, settings, warm_up=None):
        """`warm_up(model)`, if given, runs the model's first prediction before the model is handed out:
        readiness then means a prediction has been made, and a model that cannot make one fails to load."""
        self._settings = settings
        self._warm_up = warm_up
        self._policy = artifact.LoadPolicy(
            allow_pickle=settings.allow_pickle,
            allow_version_mismatch=settings.allow_version_mismatch,
            trusted_types=settings.trusted_types,
            name=settings.model_name,
            version=settings.model_version,
        )
        self._lock = threading.Lock()
        self._model: artifact.LoadedModel | None = None
        self._source: dict = {}
        self._error: ModelLoadError | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._loading = False

    @property
    def model(self) -> artifact.LoadedModel | None:
        """The loaded model, or None; never waits."""
        return self._model

    @property
    def source(self) -> dict:
        return self._source

    @property
    def last_error(self) -> ModelLoadError | None:
        return self._error

    def retry_after(self) -> float:
        """Seconds until a failed load may be tried again (0 when it may be tried now)."""
        return max(0.0, self._retry_at - time.monotonic()) if self._error else 0.0

    def get(self) -> artifact.LoadedModel:
        """The model, loading it if needed; raises ModelLoadError with what is wrong."""
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is not None:
                return self._model
            if self._error is not None and time.monotonic() < self._retry_at:
                raise self._error
            return self._load()

    def start_background_load(self) -> None:
        """Starts loading in a daemon thread unless loaded, loading, or backing off; never waits."""
        if self._model is not None or self._loading or self.retry_after() > 0:
            return
        threading.Thread(target=self._load_quietly, name="model-warmup", daemon=True).start()

    def _load_quietly(self) -> None:
        try:
            self.get()
        except ModelLoadError:
            pass  # already logged; requests report it

    def _load(self) -> artifact.LoadedModel:
        uri = self._settings.model_uri
        timeline = Timeline()
        self._loading = True
        try:
            with timeline.step("fetch"):
                fetched = sources.fetch(uri, sources.FetchOptions(
                    cache_dir=self._settings.cache_dir,
                    timeout_s=self._settings.fetch_timeout_s,
                    generation=self._settings.model_generation,
                ))
            with _collector_paused():
                model = artifact.load(fetched.path, self._policy, timeline, builtin=baked.applies(uri, fetched.path))
                if self._warm_up is not None:
                    with timeline.step("first_prediction"):
                        self._warm_up(model)
        except ModelLoadError as e:
            self._fail(e, uri, timeline)
            raise
        except Exception as e:  # a bug or an unforeseen library error: report it without its text
            log.exception("unexpected error while loading the model", extra={"event": "model_load_failed", "uri": uri})
            error = ModelLoadError(f"loading the model from {uri} failed unexpectedly ({type(e).__name__}); see the logs")
            self._fail(error, uri, timeline, logged=True)
            raise error from None
        finally:
            self._loading = False
        self._model, self._source, self._error, self._failures = model, {"uri": uri, **fetched.details}, None, 0
        # The model's objects live as long as the process: keep the collector from walking them. No
        # collection first: it would walk every object the load made (~0.1 s) to find a few hundred
        # cycles left by imports, which cost no measurable memory left in place.
        gc.freeze()
        startup = timeline.as_dict()
        log.info(f"model loaded: {model.name} {model.version} from {uri} in {startup['total_s']:.3f}s", extra={
            "event": "model_loaded", "source": self._source, "model_name": model.name, "model_version": model.version,
            "format": model.format, "seconds": startup["total_s"], "startup": startup, **timeline.details,
            "pid": os.getpid()})
        return model

    def _fail(self, error: ModelLoadError, uri: str, timeline: Timeline, logged: bool = False) -> None:
        self._failures += 1
        delay = min(self._settings.retry_backoff_s * 2 ** (self._failures - 1), self._settings.retry_backoff_max_s)
        self._error, self._retry_at = error, time.monotonic() + delay
        if not logged:
            log.error(f"model load failed: {error}", extra={
                "event": "model_load_failed", "uri": uri, "reason": error.reason,
                "seconds": timeline.as_dict()["total_s"], "retry_in_s": round(delay, 2)})

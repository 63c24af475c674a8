"""The one model of this process: loaded lazily, once, thread-safely, and retried after failures.

`ModelHolder.get()` returns the loaded model, loading it first if needed; concurrent callers wait for
the same load. A failed load is remembered only for a back-off period (doubling from
MODEL_RETRY_BACKOFF_S up to MODEL_RETRY_BACKOFF_MAX_S) so a broken source is not hammered; after it the
next caller tries again, and a mended source is picked up without a restart.
"""

import gc
import logging
import os
import threading
import time

from model import artifact, sources
from model.errors import ModelLoadError

log = logging.getLogger("model")


class ModelHolder:
    def __init__(self, settings):
        self._settings = settings
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
        started = time.perf_counter()
        self._loading = True
        try:
            fetched = sources.fetch(uri, sources.FetchOptions(
                cache_dir=self._settings.cache_dir,
                timeout_s=self._settings.fetch_timeout_s,
                generation=self._settings.model_generation,
            ))
            model = artifact.load(fetched.path, self._policy)
        except ModelLoadError as e:
            self._fail(e, uri, started)
            raise
        except Exception as e:  # a bug or an unforeseen library error: report it without its text
            log.exception("unexpected error while loading the model", extra={"event": "model_load_failed", "uri": uri})
            error = ModelLoadError(f"loading the model from {uri} failed unexpectedly ({type(e).__name__}); see the logs")
            self._fail(error, uri, started, logged=True)
            raise error from None
        finally:
            self._loading = False
        seconds = time.perf_counter() - started
        self._model, self._source, self._error, self._failures = model, {"uri": uri, **fetched.details}, None, 0
        # The model's objects live as long as the process: keep the collector from walking them.
        gc.collect()
        gc.freeze()
        log.info(f"model loaded: {model.name} {model.version} from {uri} in {seconds:.3f}s", extra={
            "event": "model_loaded", "source": self._source, "model_name": model.name, "model_version": model.version,
            "format": model.format, "seconds": round(seconds, 4), "pid": os.getpid()})
        return model

    def _fail(self, error: ModelLoadError, uri: str, started: float, logged: bool = False) -> None:
        self._failures += 1
        delay = min(self._settings.retry_backoff_s * 2 ** (self._failures - 1), self._settings.retry_backoff_max_s)
        self._error, self._retry_at = error, time.monotonic() + delay
        if not logged:
            log.error(f"model load failed: {error}", extra={
                "event": "model_load_failed", "uri": uri, "reason": error.reason,
                "seconds": round(time.perf_counter() - started, 4), "retry_in_s": round(delay, 2)})

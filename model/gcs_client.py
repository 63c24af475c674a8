"""The Cloud Storage client of this process, and the deadline every call is held to.

The client is created on first use, once per process, never inherited across fork, with the runtime's
default credentials; with STORAGE_EMULATOR_HOST set the library talks anonymously to that server.
Every call gets a connect/read timeout and a retry bounded by what is left of one deadline, and
`as_load_error` turns what the library raises into a ModelLoadError that names the URI and the cause.
"""

import os
import re
import threading
import time

from model.errors import (
    ModelIntegrityError,
    ModelLoadError,
    ModelNotFound,
    ModelUnreadable,
    SourceUnavailable,
)

_CONNECT_TIMEOUT_S = 5.0

_lock = threading.Lock()
_client = None


def _forget_after_fork() -> None:
    # A client's connection pool, or a lock another thread held, must not cross a fork.
    global _lock, _client
    _lock, _client = threading.Lock(), None


os.register_at_fork(after_in_child=_forget_after_fork)


def client():
    """The process's storage client, created on first use."""
    global _client
    with _lock:
        if _client is None:
            from google.cloud import storage

            # project=None: reading objects needs none, and looking one up costs a metadata call.
            _client = storage.Client(project=None)
        return _client


def reset_client() -> None:
    """Drops the client, so the next call builds one from the current environment."""
    global _client
    with _lock:
        _client = None


class OutOfTime(Exception):
    """The fetch used up its deadline."""


class Budget:
    """What is left of one operation's deadline, handed to every call as timeout and retry."""

    def __init__(self, seconds: float, setting: str = "MODEL_FETCH_TIMEOUT_S"):
        self.seconds, self.setting = seconds, setting
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise OutOfTime(f"the {self.seconds:g} s deadline passed")
        return left

    def call(self) -> dict:
        from google.cloud.storage.retry import DEFAULT_RETRY

        left = self.remaining()
        return {"timeout": (min(_CONNECT_TIMEOUT_S, left), left), "retry": DEFAULT_RETRY.with_timeout(left)}


def as_load_error(exc: Exception, uri: str, budget: Budget) -> ModelLoadError:
    """The ModelLoadError that says what went wrong with `uri`; re-raises what it does not know."""
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth
    from google.cloud.storage.exceptions import DataCorruption

    if isinstance(exc, api.RetryError):
        return SourceUnavailable(f"{uri}: Cloud Storage did not answer within {budget.seconds:g} s "
                                 f"({budget.setting}); last error: {_cause(exc.cause)}")
    if isinstance(exc, OutOfTime):
        return SourceUnavailable(f"{uri}: stopped, {exc} ({budget.setting})")
    if isinstance(exc, (api.Forbidden, api.Unauthorized)):
        return SourceUnavailable(f"{uri}: permission denied ({exc.code}): grant the runtime service account "
                                 f"roles/storage.objectViewer on the bucket; {exc.message}")
    if isinstance(exc, DataCorruption):
        return ModelIntegrityError(f"{uri}: downloaded bytes fail the checksum ({_checksums(exc)}): the stored "
                                   "object is damaged, or was damaged on the way; publish the model again")
    if isinstance(exc, auth.DefaultCredentialsError):
        return SourceUnavailable(f"{uri}: no Google credentials: on Cloud Run the service account is used; "
                                 "locally run `gcloud auth application-default login`")
    if isinstance(exc, api.NotFound):
        return ModelNotFound(f"{uri}: not found: {exc.message}")
    network = (api.ServerError, api.TooManyRequests, ConnectionError, TimeoutError, auth.TransportError)
    if isinstance(exc, network) or type(exc).__module__.split(".")[0] in ("requests", "urllib3"):
        return SourceUnavailable(f"{uri}: Cloud Storage unreachable: {_cause(exc)}")
    if isinstance(exc, OSError):
        return ModelUnreadable(f"{uri}: cannot write the local model cache: {exc}")
    if isinstance(exc, api.GoogleAPICallError):
        return ModelUnreadable(f"{uri}: Cloud Storage answered {exc.code}: {exc.message}")
    raise exc


def _checksums(exc) -> str:
    """What the library's long DataCorruption text says in a few words: the stored and the received hash."""
    found = re.search(r"indicated an? (\S+) checksum of:\s*(\S+).*?was:\s*(\S+)", " ".join(str(exc).split()))
    if found is None:
        return _cause(exc)
    kind, stored, received = found.groups()
    return f"{kind} stored {stored}, received {received}"


def _cause(exc) -> str:
    # requests and urllib3 nest the useful part ("Connection refused", "Read timed out") a few levels in.
    name, inner = type(exc).__name__, exc
    for _ in range(4):
        nested = getattr(inner, "reason", None)
        if not isinstance(nested, Exception):
            nested = inner.args[0] if inner.args and isinstance(inner.args[0], Exception) else None
        if nested is None:
            break
        inner = nested
    return f"{name}: {' '.join(str(inner).split())[:300]}"

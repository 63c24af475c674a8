"""Settings from environment variables, read once when the function module loads.

`VARIABLES` is the one table of them: name, default, meaning, and whether a release may set it per
revision (`./deploy.sh` reads it; the README's table is checked against it). `Settings.from_env`
reads them, refusing unusable values with a ConfigError that names the variable.
"""

import dataclasses
import os
import pathlib
import tempfile

from model import DEFAULT_MODEL_DIR


@dataclasses.dataclass(frozen=True)
class Variable:
    name: str
    default: str
    meaning: str
    per_release: bool = True  # False: set by the platform (Cloud Run, Vertex AI), not by a release


VARIABLES = (
    Variable("MODEL_URI", "<repo>/model/artifacts",
             "model directory, manifest, bare artifact file, or gs://BUCKET/PATH[#GEN]"),
    Variable("MODEL_GENERATION", "", "pins the Cloud Storage object generation (same as #GEN in the URI)"),
    Variable("MODEL_CACHE_DIR", "<tmp>/model-cache", "where downloaded models are kept (Cloud Run's /tmp is in memory)"),
    Variable("MODEL_FETCH_TIMEOUT_S", "20", "deadline for fetching a remote model, all retries included"),
    Variable("MODEL_RETRY_BACKOFF_S", "1", "wait after a failed load before the next try; doubles per failure"),
    Variable("MODEL_RETRY_BACKOFF_MAX_S", "30", "cap of that wait"),
    Variable("MODEL_ALLOW_PICKLE", "false", "allow pickle/joblib artifacts, which run code when loaded"),
    Variable("MODEL_ALLOW_VERSION_MISMATCH", "false", "load a model trained with another scikit-learn (logged as a warning)"),
    Variable("MODEL_TRUSTED_TYPES", "", "extra comma-separated type names the skops loader may create"),
    Variable("MODEL_NAME", "", "name for a bare artifact without a manifest (default: the file name)"),
    Variable("MODEL_VERSION", "", "version for a bare artifact without a manifest (default: its SHA-256 prefix)"),
    Variable("MODEL_WARMUP", "true", "load the model in the background as soon as a server worker starts"),
    Variable("BATCHING", "true", "coalesce rows of concurrent requests into one model call"),
    Variable("MAX_ROWS", "10000", "most rows one request may carry"),
    Variable("MAX_BODY_BYTES", "10485760", "largest request body (10 MiB); larger ones get 413 before being read"),
    Variable("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Variable("GRACEFUL_TIMEOUT_S", "8", "after SIGTERM, how long in-flight requests may finish (Cloud Run kills at 10 s)"),
    Variable("K_SERVICE", "", "set by Cloud Run; reported in GET / and in logs", per_release=False),
    Variable("K_REVISION", "", "set by Cloud Run; reported in GET / and in logs", per_release=False),
    Variable("GOOGLE_CLOUD_PROJECT", "", "makes trace ids full Cloud Logging trace names (set by every deploy)",
             per_release=False),
    Variable("AIP_HTTP_PORT", "", "set by Vertex AI: the port to listen on (takes precedence over PORT)", per_release=False),
    Variable("AIP_HEALTH_ROUTE", "", "set by Vertex AI: a route answering 200 once the model is ready", per_release=False),
    Variable("AIP_PREDICT_ROUTE", "", "set by Vertex AI: a route taking {\"instances\": [...]}", per_release=False),
    Variable("AIP_STORAGE_URI", "", "set by Vertex AI: the model's gs:// directory, used when MODEL_URI is unset",
             per_release=False),
)


class ConfigError(ValueError):
    """An environment variable holds a value that cannot be used."""


def _flag(env, name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true or false)")


def _number(env, name: str, default, kind=float, minimum=0):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a {kind.__name__}") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _route(env, name: str) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not raw.startswith("/") or any(c in raw for c in "?# "):
        raise ConfigError(f"{name}={raw!r} must be a path starting with / (no query, fragment or spaces)")
    return raw


def _port(env, name: str) -> int | None:
    port = _number(env, name, None, int, 1)
    if port is not None and port > 65535:
        raise ConfigError(f"{name}={port} is not a TCP port (1 to 65535)")
    return port


@dataclasses.dataclass(frozen=True)
class Settings:
    model_uri: str
    model_generation: int | None
    cache_dir: pathlib.Path
    fetch_timeout_s: float
    retry_backoff_s: float
    retry_backoff_max_s: float
    allow_pickle: bool
    allow_version_mismatch: bool
    trusted_types: tuple[str, ...]
    model_name: str | None
    model_version: str | None
    warmup: bool
    batching: bool
    max_rows: int
    max_body_bytes: int
    log_level: str
    graceful_timeout_s: float
    service: str | None
    revision: str | None
    project: str | None
    health_route: str | None
    predict_route: str | None
    http_port: int | None  # Vertex AI's port, over PORT; functions-framework reads PORT itself

    @classmethod
    def from_env(cls, env=None) -> "Settings":
        env = os.environ if env is None else env
        generation = _number(env, "MODEL_GENERATION", None, int, 1)
        level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"LOG_LEVEL={level!r} is not one of DEBUG, INFO, WARNING, ERROR")
        return cls(
            model_uri=env.get("MODEL_URI", "").strip() or env.get("AIP_STORAGE_URI", "").strip() or str(DEFAULT_MODEL_DIR),
            model_generation=generation,
            cache_dir=pathlib.Path(env.get("MODEL_CACHE_DIR") or pathlib.Path(tempfile.gettempdir(), "model-cache")),
            fetch_timeout_s=_number(env, "MODEL_FETCH_TIMEOUT_S", 20.0, float, 0.1),
            retry_backoff_s=_number(env, "MODEL_RETRY_BACKOFF_S", 1.0),
            retry_backoff_max_s=_number(env, "MODEL_RETRY_BACKOFF_MAX_S", 30.0),
            allow_pickle=_flag(env, "MODEL_ALLOW_PICKLE", False),
            allow_version_mismatch=_flag(env, "MODEL_ALLOW_VERSION_MISMATCH", False),
            trusted_types=tuple(t.strip() for t in env.get("MODEL_TRUSTED_TYPES", "").split(",") if t.strip()),
            model_name=env.get("MODEL_NAME") or None,
            model_version=env.get("MODEL_VERSION") or None,
            warmup=_flag(env, "MODEL_WARMUP", True),
            batching=_flag(env, "BATCHING", True),
            max_rows=_number(env, "MAX_ROWS", 10_000, int, 1),
            max_body_bytes=_number(env, "MAX_BODY_BYTES", 10 * 1024 * 1024, int, 1),
            log_level=level,
            graceful_timeout_s=_number(env, "GRACEFUL_TIMEOUT_S", 8.0),
            service=env.get("K_SERVICE") or None,
            revision=env.get("K_REVISION") or None,
            project=env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCP_PROJECT") or None,
            health_route=_route(env, "AIP_HEALTH_ROUTE"),
            predict_route=_route(env, "AIP_PREDICT_ROUTE"),
            http_port=_port(env, "AIP_HTTP_PORT"),
        )

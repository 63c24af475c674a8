"""Every setting a release reads, from env vars, in one place with its documented default."""

import os
import re
from dataclasses import dataclass

from release.errors import UsageError

# Service settings users tune: (env var, default, meaning). CONCURRENCY is how many requests Cloud Run
# sends one instance at once: they share its event loop and meet in its micro-batcher.
SETTINGS = (
    ("RUN_CPU", "1", "vCPUs per instance (--cpu)"),
    ("RUN_MEMORY", "1Gi", "memory per instance (--memory)"),
    ("RUN_CONCURRENCY", "16", "requests per instance (--concurrency)"),
    ("RUN_MIN_INSTANCES", "0", "instances kept warm (--min-instances)"),
    ("RUN_MAX_INSTANCES", "10", "upper bound on instances (--max-instances)"),
    ("RUN_CPU_BOOST", "true", "startup CPU boost while the model loads (--cpu-boost)"),
    ("RUN_TIMEOUT", "300", "request timeout in seconds (--timeout)"),
    ("RUN_SERVICE_ACCOUNT", "", "runtime service account (--service-account); empty: the default"),
    ("ALLOW_UNAUTHENTICATED", "", "true: public; false: make private; unset: private on creation"),
)
REQUIRED = ("PROJECT_ID", "REGION", "SERVICE")
# Env vars of the app forwarded to the revision when set here (MODEL_URI, MODEL_ALLOW_PICKLE, ...).
MODEL_PREFIX = "MODEL_"
_SERVICE_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$")
_DELIMITERS = "@|#~;"


@dataclass(frozen=True)
class Target:
    """Where releases go: the gcloud project, region and Cloud Run service."""

    project: str
    region: str
    service: str


def target(environ=os.environ):
    """Reads PROJECT_ID, REGION and SERVICE; raises UsageError naming the first one missing."""
    missing = [name for name in REQUIRED if not environ.get(name)]
    if missing:
        raise UsageError(f"missing env var {missing[0]} (set {', '.join(REQUIRED)})")
    if not _SERVICE_NAME.match(environ["SERVICE"]):
        raise UsageError(f"SERVICE={environ['SERVICE']!r} is not a valid Cloud Run service name")
    return Target(environ["PROJECT_ID"], environ["REGION"], environ["SERVICE"])


def image(version, explicit=None, environ=os.environ):
    """The image to deploy: --image if given, else IMAGE_REPO:<version>."""
    if explicit:
        return explicit
    repo = environ.get("IMAGE_REPO", "")
    if not repo:
        raise UsageError("missing env var IMAGE_REPO (REGION-docker.pkg.dev/PROJECT/REPO/NAME) or --image")
    if ":" in repo.rsplit("/", 1)[-1] or "@" in repo:
        raise UsageError(f"IMAGE_REPO={repo!r} must not carry a tag or digest; the version is the tag")
    return f"{repo}:{version}"


def _setting(environ, name):
    return environ.get(name) or {n: d for n, d, _ in SETTINGS}[name]


def _integer(environ, name, low, high):
    value = _setting(environ, name)
    if not value.isdigit() or not low <= int(value) <= high:
        raise UsageError(f"{name}={value!r} must be an integer from {low} to {high}")
    return int(value)


def _boolean(environ, name):
    value = _setting(environ, name).lower()
    if value not in ("true", "false"):
        raise UsageError(f"{name}={value!r} must be true or false")
    return value == "true"


def _access_flag(environ, creating):
    """Private by default. On an existing service gcloud rewrites the IAM policy for either flag,
    which needs roles/run.admin, so without an explicit choice the policy is left as it is."""
    if not environ.get("ALLOW_UNAUTHENTICATED"):
        return ["--no-allow-unauthenticated"] if creating else []
    public = _boolean(environ, "ALLOW_UNAUTHENTICATED")
    return ["--allow-unauthenticated" if public else "--no-allow-unauthenticated"]


def deploy_flags(environ=os.environ, creating=True):
    """The `gcloud run deploy` flags for the tunable settings, validated before anything runs."""
    concurrency = _integer(environ, "RUN_CONCURRENCY", 1, 1000)
    low = _integer(environ, "RUN_MIN_INSTANCES", 0, 1000)
    high = _integer(environ, "RUN_MAX_INSTANCES", 1, 1000)
    if low > high:
        raise UsageError(f"RUN_MIN_INSTANCES={low} is above RUN_MAX_INSTANCES={high}")
    flags = [
        f"--cpu={_setting(environ, 'RUN_CPU')}", f"--memory={_setting(environ, 'RUN_MEMORY')}",
        f"--concurrency={concurrency}", f"--min-instances={low}", f"--max-instances={high}",
        f"--timeout={_integer(environ, 'RUN_TIMEOUT', 1, 3600)}",
        "--cpu-boost" if _boolean(environ, "RUN_CPU_BOOST") else "--no-cpu-boost",
        *_access_flag(environ, creating),
    ]
    if _setting(environ, "RUN_SERVICE_ACCOUNT"):
        flags.append(f"--service-account={_setting(environ, 'RUN_SERVICE_ACCOUNT')}")
    # The project turns the function's trace ids into full Cloud Logging trace names.
    env = {"GOOGLE_CLOUD_PROJECT": environ.get("PROJECT_ID", "")}
    env.update({k: v for k, v in sorted(environ.items()) if k.startswith(MODEL_PREFIX) and v})
    flags.append(f"--set-env-vars={_env_flag(env)}")
    return flags


def _env_flag(env):
    """KEY=VALUE pairs joined with a delimiter no value contains (gcloud's `^D^` escaping)."""
    text = "".join(f"{k}={v}" for k, v in env.items())
    delimiter = next((d for d in _DELIMITERS if d not in text), None)
    if delimiter is None:
        raise UsageError(f"model env vars contain every delimiter {_DELIMITERS!r}; simplify their values")
    return f"^{delimiter}^" + delimiter.join(f"{k}={v}" for k, v in env.items())

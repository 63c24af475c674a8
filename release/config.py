"""Every setting a release reads, from env vars, in one place with its documented default.

Two tables: `SETTINGS`, how Cloud Run runs the revision (RUN_*), and the function's own settings,
`service.config.VARIABLES` (the ones marked per_release), which a release sets on the revision as env
vars of the same names. `THRESHOLDS` are the defaults of compare's and canary's gates.
"""

import os
import re
from dataclasses import dataclass

from release.errors import UsageError
from service import config as function_config

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
    ("RUN_STARTUP_PROBE_PERIOD", "2", "seconds between startup probes of GET /v2/health/ready (1-240)"),
    ("RUN_STARTUP_PROBE_FAILURES", "60", "failed startup probes before the revision fails (period x this = load budget)"),
    ("RUN_LIVENESS_PROBE_PERIOD", "10", "seconds between liveness probes of GET /v2/health/live (1-3600)"),
    ("RUN_LIVENESS_PROBE_FAILURES", "3", "failed liveness probes in a row before Cloud Run restarts the instance"),
)
REQUIRED = ("PROJECT_ID", "REGION", "SERVICE")
# The function's routes the probes use: ready answers 200 only once the model is loaded and warm;
# live never waits for the model, so a slow load is never mistaken for a hung instance.
STARTUP_PATH = "/v2/health/ready"
LIVENESS_PATH = "/v2/health/live"
# The function's settings a release may set (service/config.py is their one table).
FUNCTION_SETTINGS = tuple(v for v in function_config.VARIABLES if v.per_release)
# Unknown names with this prefix are refused: a typo (MODEL_URL) must not deploy the default model.
MODEL_PREFIX = "MODEL_"

# Gates of `compare` and `canary --watch`: (env var, default, meaning). A flag overrides the env var.
THRESHOLDS = (
    ("COMPARE_MIN_AGREEMENT", "0.99", "compare: least share of rows where NEW answers as OLD does"),
    ("COMPARE_MAX_LATENCY_RATIO", "1.5", "compare: most NEW p50 / OLD p50"),
    ("COMPARE_MAX_ERRORS", "0", "compare: most rows NEW may fail (non-200 or no answer)"),
    ("COMPARE_TOLERANCE", "0", "compare: regressors agree on a row when |NEW - OLD| <= this"),
    ("CANARY_INTERVAL", "60s", "canary --watch: time between two reads of Cloud Monitoring"),
    ("CANARY_MIN_REQUESTS", "100", "canary --watch: requests the canary must serve before it is judged"),
    ("CANARY_MAX_ERROR_RATE", "0.01", "canary --watch: most canary 5xx rate above the stable's (0.01 = 1 point)"),
    ("CANARY_MAX_LATENCY_RATIO", "1.5", "canary --watch: most canary p99 / stable p99 ..."),
    ("CANARY_LATENCY_SLACK_MS", "25", "canary --watch: ... and most ms the canary p99 may exceed the stable's"),
)
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


def threshold(name, environ=os.environ):
    """The env var's value, else the documented default (parsed by the flag that uses it)."""
    return environ.get(name) or {n: d for n, d, _ in THRESHOLDS}[name]


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


@dataclass(frozen=True)
class Revision:
    """What a release sets on a revision: Cloud Run's settings (RUN_* name -> value; None for the
    service account when unset, which leaves the service's as it is) and the env vars."""

    run: dict
    env: dict


def _probe(path, period, failures):
    # The timeout is the period (Cloud Run's most): the routes answer at once, but a cold instance
    # may be busy loading the model with its one vCPU.
    return {"path": path, "periodSeconds": period, "timeoutSeconds": period, "failureThreshold": failures}


def revision(environ=os.environ):
    """Reads and validates every RUN_* setting and the function's settings; UsageError on the first
    bad one, before gcloud is asked anything."""
    concurrency = _integer(environ, "RUN_CONCURRENCY", 1, 1000)
    low = _integer(environ, "RUN_MIN_INSTANCES", 0, 1000)
    high = _integer(environ, "RUN_MAX_INSTANCES", 1, 1000)
    if low > high:
        raise UsageError(f"RUN_MIN_INSTANCES={low} is above RUN_MAX_INSTANCES={high}")
    run = {
        "RUN_CPU": _setting(environ, "RUN_CPU"), "RUN_MEMORY": _setting(environ, "RUN_MEMORY"),
        "RUN_CONCURRENCY": str(concurrency), "RUN_MIN_INSTANCES": str(low), "RUN_MAX_INSTANCES": str(high),
        "RUN_TIMEOUT": str(_integer(environ, "RUN_TIMEOUT", 1, 3600)),
        "RUN_CPU_BOOST": "true" if _boolean(environ, "RUN_CPU_BOOST") else "false",
        "RUN_SERVICE_ACCOUNT": _setting(environ, "RUN_SERVICE_ACCOUNT") or None,
        "startup probe": _probe(STARTUP_PATH, _integer(environ, "RUN_STARTUP_PROBE_PERIOD", 1, 240),
                                _integer(environ, "RUN_STARTUP_PROBE_FAILURES", 1, 1000)),
        "liveness probe": _probe(LIVENESS_PATH, _integer(environ, "RUN_LIVENESS_PROBE_PERIOD", 1, 3600),
                                 _integer(environ, "RUN_LIVENESS_PROBE_FAILURES", 1, 1000)),
    }
    # The project turns the function's trace ids into full Cloud Logging trace names.
    env = {"GOOGLE_CLOUD_PROJECT": environ.get("PROJECT_ID", "")}
    env.update(function_env(environ))
    return Revision(run, env)


def function_env(environ=os.environ):
    """The function's settings set here (non-empty), checked the way the function will read them."""
    names = {v.name for v in FUNCTION_SETTINGS}
    unknown = sorted(k for k in environ if k.startswith(MODEL_PREFIX) and k not in names and environ[k])
    if unknown:
        raise UsageError(f"{unknown[0]} is not a setting of the function (see ./deploy.sh help)")
    env = {v.name: environ[v.name] for v in FUNCTION_SETTINGS if environ.get(v.name)}
    try:
        function_config.Settings.from_env(env)
    except function_config.ConfigError as error:
        raise UsageError(str(error)) from None
    return env


def _probe_flag(probe):
    return ",".join([f"httpGet.path={probe['path']}", "initialDelaySeconds=0",
                     *(f"{key}={probe[key]}" for key in ("periodSeconds", "timeoutSeconds", "failureThreshold"))])


def deploy_flags(environ=os.environ, creating=True):
    """The `gcloud run deploy` flags for the tunable settings, validated before anything runs."""
    wanted = revision(environ)
    run = wanted.run
    flags = [
        f"--cpu={run['RUN_CPU']}", f"--memory={run['RUN_MEMORY']}", f"--concurrency={run['RUN_CONCURRENCY']}",
        f"--min-instances={run['RUN_MIN_INSTANCES']}", f"--max-instances={run['RUN_MAX_INSTANCES']}",
        f"--timeout={run['RUN_TIMEOUT']}", "--cpu-boost" if run["RUN_CPU_BOOST"] == "true" else "--no-cpu-boost",
        f"--startup-probe={_probe_flag(run['startup probe'])}",
        f"--liveness-probe={_probe_flag(run['liveness probe'])}",
        *_access_flag(environ, creating),
    ]
    if run["RUN_SERVICE_ACCOUNT"]:
        flags.append(f"--service-account={run['RUN_SERVICE_ACCOUNT']}")
    flags.append(f"--set-env-vars={_env_flag(wanted.env)}")
    return flags


def _env_flag(env):
    """KEY=VALUE pairs joined with a delimiter no value contains (gcloud's `^D^` escaping)."""
    text = "".join(f"{k}={v}" for k, v in env.items())
    delimiter = next((d for d in _DELIMITERS if d not in text), None)
    if delimiter is None:
        raise UsageError(f"the function's settings contain every delimiter {_DELIMITERS!r}; simplify their values")
    return f"^{delimiter}^" + delimiter.join(f"{k}={v}" for k, v in env.items())

"""Batch scoring as a Cloud Run job running a release's image: `job` creates or updates it, `batch` runs it.

The job's container runs `python -m batch`; each execution passes INPUT and OUTPUT as the container's
args, so one job scores any data set, with as many tasks as asked: Cloud Run runs them in parallel
(each sees CLOUD_RUN_TASK_INDEX and CLOUD_RUN_TASK_COUNT and takes its share), retries a failed task
up to JOB_MAX_RETRIES times, and stops one at JOB_TASK_TIMEOUT. The job gets the function's settings
as the service does (`config.function_env`), and BATCH_* ones (BATCH_SIZE, BATCH_SHARD_MB, ...).
"""

import json
import os
import re

from release import config, versions
from release.errors import ReleaseError, UsageError
from release.gcloud import Gcloud

# (env var, default, meaning); JOB's default is "<SERVICE>-batch".
SETTINGS = (
    ("JOB", "", "the Cloud Run job's name (default: SERVICE-batch)"),
    ("JOB_CPU", "1", "vCPUs per task (--cpu)"),
    ("JOB_MEMORY", "2Gi", "memory per task (--memory); a task holds one shard's output in /tmp"),
    ("JOB_TASK_TIMEOUT", "3600", "seconds a task may run before Cloud Run stops it (--task-timeout)"),
    ("JOB_MAX_RETRIES", "3", "times a failed task is run again (--max-retries)"),
    ("JOB_PARALLELISM", "0", "tasks running at once; 0: as many as Cloud Run allows (--parallelism)"),
)
BATCH_PREFIX = "BATCH_"
MAX_TASKS = 10000
_JOB_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_DELIMITERS = "@|#~;"


def _setting(environ, name):
    return environ.get(name) or dict((n, d) for n, d, _ in SETTINGS)[name]


def job_name(target, environ=os.environ):
    name = environ.get("JOB") or f"{target.service}-batch"
    if not _JOB_NAME.match(name):
        raise UsageError(f"JOB={name!r} is not a valid Cloud Run job name (lowercase letters, digits, '-')")
    return name


def _integer(environ, name, low, high):
    value = _setting(environ, name)
    if not value.isdigit() or not low <= int(value) <= high:
        raise UsageError(f"{name}={value!r} must be an integer from {low} to {high}")
    return int(value)


def _list_flag(values):
    """A gcloud list flag's value, with a delimiter none of the values contains (gcloud's `^D^` escaping)."""
    text = "".join(values)
    delimiter = "," if "," not in text else next((d for d in _DELIMITERS if d not in text), None)
    if delimiter is None:
        raise UsageError(f"values contain every delimiter {_DELIMITERS!r}: {values}")
    return delimiter.join(values) if delimiter == "," else f"^{delimiter}^" + delimiter.join(values)


def job_flags(environ=os.environ):
    """The `gcloud run jobs deploy` flags for the job's settings, validated before anything runs."""
    flags = [
        "--command=python,-m,batch", f"--cpu={_setting(environ, 'JOB_CPU')}",
        f"--memory={_setting(environ, 'JOB_MEMORY')}",
        f"--task-timeout={_integer(environ, 'JOB_TASK_TIMEOUT', 1, 7 * 24 * 3600)}s",
        f"--max-retries={_integer(environ, 'JOB_MAX_RETRIES', 0, 10)}",
        f"--parallelism={_integer(environ, 'JOB_PARALLELISM', 0, MAX_TASKS)}",
    ]
    if environ.get("RUN_SERVICE_ACCOUNT"):
        flags.append(f"--service-account={environ['RUN_SERVICE_ACCOUNT']}")
    # The function's settings as a release sets them on the service (checked the same way), and the scorer's.
    env = {"GOOGLE_CLOUD_PROJECT": environ.get("PROJECT_ID", ""), **config.function_env(environ)}
    env.update({k: v for k, v in sorted(environ.items()) if k.startswith(BATCH_PREFIX) and v})
    flags.append("--set-env-vars=" + _list_flag([f"{k}={v}" for k, v in env.items()]))
    return flags


def _job_or_none(gcloud, name):
    try:
        return gcloud.read("run", "jobs", "describe", name)
    except ReleaseError as error:
        if "Cannot find job" in str(error):
            return None
        raise


def _image_of(job):
    return job["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]["image"]


def deploy_job(version, image=None):
    """Creates the job, or points it at `version`'s image with the current settings."""
    versions.parse(version)
    target, image = config.target(), config.image(version, image)
    name, flags = job_name(target), job_flags()
    gcloud = Gcloud(target)
    existing = _job_or_none(gcloud, name)
    job = gcloud.change("run", "jobs", "deploy", name, f"--image={image}", *flags)
    print(json.dumps({"job": name, "version": version, "image": _image_of(job) if job else image,
                      "created": existing is None}))
    return 0


def _gs_uri(text, what):
    if not re.match(r"^gs://[a-z0-9][-_.a-z0-9]{1,221}/?", text or ""):
        raise UsageError(f"{what} must be a gs://BUCKET/PATH URI (the job's tasks read and write Cloud Storage), "
                         f"got {text!r}")
    return text


def _tasks(text):
    if not str(text).isdigit() or not 1 <= int(text) <= MAX_TASKS:
        raise UsageError(f"--tasks must be an integer from 1 to {MAX_TASKS}, got {text!r}")
    return int(text)


def run_batch(version, source, destination, tasks=1, wait=True):
    """Runs the job on `version`'s image over gs://SOURCE into gs://DESTINATION with `tasks` tasks."""
    versions.parse(version)
    source, destination, count = _gs_uri(source, "INPUT"), _gs_uri(destination, "OUTPUT"), _tasks(tasks)
    target = config.target()
    name, image = job_name(target), config.image(version)
    gcloud = Gcloud(target)
    job = _job_or_none(gcloud, name)
    if job is None:
        raise ReleaseError(f"job {name} does not exist in {target.project}/{target.region}; "
                           f"run ./deploy.sh job {version} first")
    if _image_of(job) != image:
        raise ReleaseError(f"job {name} runs {_image_of(job)}, not {version}; run ./deploy.sh job {version} first")
    args = ["run", "jobs", "execute", name, "--args=" + _list_flag([source, destination]), f"--tasks={count}"]
    try:
        execution = gcloud.change(*args, *(["--wait"] if wait else []))
    except ReleaseError as error:
        raise ReleaseError(_failure(gcloud, name) or str(error)) from None
    print(json.dumps(_summary(execution, source, destination)))
    return 0


def _summary(execution, source, destination):
    status = execution.get("status", {})
    completed = next((c for c in status.get("conditions", []) if c.get("type") == "Completed"), {})
    return {"execution": execution["metadata"]["name"], "input": source, "output": destination,
            "tasks": execution["spec"].get("taskCount", 1), "succeeded": status.get("succeededCount", 0),
            "failed": status.get("failedCount", 0), "retried": status.get("retriedCount", 0),
            "completed": {"True": True, "False": False}.get(completed.get("status")), "logs": status.get("logUri")}


def _failure(gcloud, name):
    """What the job's latest execution says about its failure, or None when that cannot be read."""
    try:
        latest = gcloud.read("run", "jobs", "describe", name)["status"]["latestCreatedExecution"]["name"]
        execution = gcloud.read("run", "jobs", "executions", "describe", latest)
    except (ReleaseError, KeyError, TypeError):
        return None
    summary = _summary(execution, "", "")
    reason = next((c.get("message") for c in execution["status"].get("conditions", [])
                   if c.get("type") == "Completed" and c.get("status") == "False"), None)
    return (f"execution {summary['execution']} failed: {summary['failed']} of {summary['tasks']} tasks failed"
            + (f" ({reason})" if reason else "") + f"; logs: {summary['logs']}")

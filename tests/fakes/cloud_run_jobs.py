"""Cloud Run jobs for the Cloud Run fake: jobs, executions and tasks of the Admin API v1
(`/apis/run.googleapis.com/v1/namespaces/<project>/...`), answered as gcloud 528 calls them.

Register with `FakeCloudRun.add_api(CloudRunJobs(fake.state, runner))`. A job is stored as sent, with
what the server adds (generation, Ready condition, execution count); `jobs/<name>:run` creates an
execution from the job's template and the request's overrides (args, env, task count, timeout). With
a `LocalTasks` runner each task runs for real as a local process of the container's command, with
CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT and CLOUD_RUN_TASK_ATTEMPT set, at most `parallelism` at a
time, and a task that exits non-zero is run again until `maxRetries` retries are spent; the
execution's counts and conditions follow, as gcloud's `--wait` polls them. Without a runner every
task succeeds at once.
"""

import copy
import os
import random
import re
import string
import subprocess
import sys
import threading
import time

from tests.fakes.cloud_run_state import ApiError, _now

_PATH = re.compile(r"^/apis/run\.googleapis\.com/v1/namespaces/([^/]+)/(jobs|executions|tasks)(?:/([^/:]+))?(:run)?$")
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_MAX_TASKS = 10000


def _condition(kind, status, reason=None, message=None):
    out = {"type": kind, "status": status, "lastTransitionTime": _now()}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


class CloudRunJobs:
    """The jobs API of one fake project; `runner(execution, task_spec, index, attempt) -> exit code` runs a task."""

    def __init__(self, state, runner=None):
        self.state = state
        self.runner = runner
        self.jobs = {}
        self.executions = {}
        self.tasks = {}
        self._threads = []

    def __call__(self, method, host, path, query, read_body):
        match = _PATH.match(path)
        if not match:
            return None
        project, kind, name, run = match.groups()
        if project != self.state.project:
            raise ApiError(404, f"Namespace '{project}' not found.")
        if kind == "jobs":
            if run and method == "POST":
                return self._run(name, read_body())
            if method == "GET" and name:
                return self._job(name)
            if method == "GET":
                return self._list("JobList", self.jobs.values())
            if method == "POST" and not name:
                return self._create(read_body())
            if method == "PUT" and name:
                return self._replace(name, read_body())
        if kind == "executions" and method == "GET":
            if name:
                return self._get(self.executions, name, "EXECUTION")
            return self._list("ExecutionList", self._selected(self.executions, query, "run.googleapis.com/job"))
        if kind == "tasks" and method == "GET":
            if name:
                return self._get(self.tasks, name, "TASK")
            return self._list("TaskList", self._selected(self.tasks, query, "run.googleapis.com/execution"))
        raise ApiError(404, f"{method} {path} is not supported.")

    def wait(self, seconds=120):
        """Waits for every execution's tasks to finish (tests call it before reading results)."""
        for thread in list(self._threads):
            thread.join(seconds)

    # -- jobs ---------------------------------------------------------------------------------
    def _get(self, table, name, kind):
        if name not in table:
            raise ApiError(404, f"Resource '{name}' of kind '{kind}' in region '{self.state.region}' in project "
                                f"'{self.state.project}' does not exist.")
        return table[name]

    def _job(self, name):
        return self._get(self.jobs, name, "JOB")

    def _list(self, kind, items):
        return {"apiVersion": "run.googleapis.com/v1", "kind": kind, "metadata": {},
                "items": sorted(items, key=lambda item: item["metadata"]["name"])}

    @staticmethod
    def _selected(table, query, label):
        selector = (query.get("labelSelector") or [""])[0]
        wanted = selector.split("=", 1)[1].strip() if "=" in selector else None
        return [item for item in table.values() if wanted is None or item["metadata"]["labels"].get(label) == wanted]

    def _create(self, body):
        name = body.get("metadata", {}).get("name", "")
        if not _NAME.match(name):
            raise ApiError(400, f"metadata.name: '{name}' is not a valid job name")
        if name in self.jobs:
            raise ApiError(409, f"Resource '{name}' already exists.")
        job = copy.deepcopy(body)
        job["metadata"].update(namespace=self.state.project, generation=0, uid=f"uid-{name}",
                               creationTimestamp=_now(), resourceVersion="")
        job["status"] = {"executionCount": 0}
        return self._store(job)

    def _replace(self, name, body):
        current = self._job(name)
        job = copy.deepcopy(body)
        for key in ("uid", "creationTimestamp", "namespace", "generation"):
            job["metadata"][key] = current["metadata"][key]
        job["status"] = copy.deepcopy(current["status"])
        return self._store(job)

    def _store(self, job):
        """Validates before storing, so a refused write changes nothing."""
        spec = job.get("spec", {}).get("template", {}).get("spec", {})
        _check_execution_spec(spec)
        job["metadata"].setdefault("labels", {})["cloud.googleapis.com/location"] = self.state.region
        job["metadata"]["generation"] += 1
        job["metadata"]["resourceVersion"] = f"rv-{job['metadata']['name']}-{job['metadata']['generation']}"
        job["status"].update(observedGeneration=job["metadata"]["generation"],
                             conditions=[_condition("Ready", "True")])
        self.jobs[job["metadata"]["name"]] = job
        return job

    # -- executions -----------------------------------------------------------------------------
    def _run(self, name, body):
        job = self._job(name)
        spec = copy.deepcopy(job["spec"]["template"]["spec"])
        overrides = (body or {}).get("overrides") or {}
        container = spec["template"]["spec"]["containers"][0]
        for override in overrides.get("containerOverrides", []):
            if override.get("args") or override.get("clearArgs"):
                container["args"] = list(override.get("args", []))
            if override.get("env"):
                merged = {e["name"]: e for e in container.get("env", [])}
                merged.update({e["name"]: e for e in override["env"]})
                container["env"] = list(merged.values())
        if overrides.get("taskCount") is not None:
            spec["taskCount"] = overrides["taskCount"]
            spec["parallelism"] = min(spec.get("parallelism") or spec["taskCount"], spec["taskCount"])
        if overrides.get("timeoutSeconds"):
            spec["template"]["spec"]["timeoutSeconds"] = str(overrides["timeoutSeconds"])
        _check_execution_spec(spec)
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        execution_name = f"{name}-{suffix}"
        count = spec.get("taskCount", 1)
        labels = {**job["spec"]["template"].get("metadata", {}).get("labels", {}), "run.googleapis.com/job": name,
                  "cloud.googleapis.com/location": self.state.region}
        labels.pop("client.knative.dev/nonce", None)
        execution = {
            "apiVersion": "run.googleapis.com/v1", "kind": "Execution",
            "metadata": {"name": execution_name, "namespace": self.state.project, "generation": 1,
                         "creationTimestamp": _now(), "labels": labels, "uid": f"uid-{execution_name}",
                         "annotations": dict(job["spec"]["template"].get("metadata", {}).get("annotations", {})),
                         "ownerReferences": [{"kind": "Job", "name": name, "apiVersion": "run.googleapis.com/v1"}]},
            "spec": spec,
            "status": {"observedGeneration": 1, "startTime": _now(), "runningCount": 0, "succeededCount": 0,
                       "failedCount": 0, "retriedCount": 0, "cancelledCount": 0,
                       "logUri": f"https://console.cloud.google.com/logs/viewer?project={self.state.project}"
                                 f"&advancedFilter=resource.labels.job_name%3D{name}",
                       "conditions": [_condition("Completed", "Unknown"), _condition("ResourcesAvailable", "True"),
                                      _condition("Started", "True")]},
        }
        self.executions[execution_name] = execution
        job["status"]["executionCount"] = job["status"].get("executionCount", 0) + 1
        job["status"]["latestCreatedExecution"] = {"name": execution_name, "creationTimestamp": _now()}
        for index in range(count):
            self.tasks[f"{execution_name}-task{index}"] = {
                "apiVersion": "run.googleapis.com/v1", "kind": "Task",
                "metadata": {"name": f"{execution_name}-task{index}", "namespace": self.state.project,
                             "labels": {"run.googleapis.com/job": name, "run.googleapis.com/execution": execution_name,
                                        "run.googleapis.com/taskIndex": str(index),
                                        "cloud.googleapis.com/location": self.state.region}},
                "spec": copy.deepcopy(spec["template"]["spec"]), "status": {"index": index, "retried": 0}}
        thread = threading.Thread(target=self._execute, args=(execution,), daemon=True)
        self._threads.append(thread)
        thread.start()
        return execution

    def _execute(self, execution):
        spec, name = execution["spec"], execution["metadata"]["name"]
        count = spec.get("taskCount", 1)
        retries = spec["template"]["spec"].get("maxRetries", 3)
        pending = list(range(count))
        slots = threading.Semaphore(spec.get("parallelism") or count)

        def one(index):
            with slots:
                for attempt in range(retries + 1):
                    self._count(execution, running=1, retried=int(attempt > 0))
                    code = self.runner(execution, spec["template"]["spec"], index, attempt) if self.runner else 0
                    self._count(execution, running=-1)
                    task = self.tasks[f"{name}-task{index}"]
                    with self.state.lock:
                        task["status"].update(retried=attempt, lastAttemptResult={"exitCode": code})
                    if code == 0:
                        self._count(execution, succeeded=1)
                        return
                self._count(execution, failed=1)

        workers = [threading.Thread(target=one, args=(i,), daemon=True) for i in pending]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        with self.state.lock:
            status = execution["status"]
            status["completionTime"] = _now()
            failed = status["failedCount"]
            completed = (_condition("Completed", "True") if not failed else _condition(
                "Completed", "False", "NonZeroExitCode",
                f"Task {name}-task{next(i for i in range(count) if self._failed(name, i))} failed with message: "
                "The container exited with an error."))
            status["conditions"][0] = completed
            job = self.jobs.get(execution["metadata"]["labels"]["run.googleapis.com/job"])
            if job and job["status"].get("latestCreatedExecution", {}).get("name") == name:
                job["status"]["latestCreatedExecution"]["completionTimestamp"] = status["completionTime"]

    def _failed(self, execution_name, index):
        return self.tasks[f"{execution_name}-task{index}"]["status"].get("lastAttemptResult", {}).get("exitCode")

    def _count(self, execution, running=0, succeeded=0, failed=0, retried=0):
        with self.state.lock:
            status = execution["status"]
            status["runningCount"] += running
            status["succeededCount"] += succeeded
            status["failedCount"] += failed
            status["retriedCount"] += retried


def _check_execution_spec(spec):
    count = spec.get("taskCount", 1)
    if not isinstance(count, int) or not 1 <= count <= _MAX_TASKS:
        raise ApiError(400, f"spec.template.spec.taskCount: must be between 1 and {_MAX_TASKS}, got {count}.")
    parallelism = spec.get("parallelism")
    if parallelism is not None and not 0 <= parallelism:
        raise ApiError(400, "spec.template.spec.parallelism: must not be negative.")
    task = spec.get("template", {}).get("spec", {})
    if not 0 <= task.get("maxRetries", 3) <= 10:
        raise ApiError(400, "spec.template.spec.template.spec.maxRetries: must be between 0 and 10.")
    containers = task.get("containers") or []
    if len(containers) != 1 or not containers[0].get("image"):
        raise ApiError(400, "spec.template.spec.template.spec.containers: exactly one container with an image.")


class LocalTasks:
    """Runs a task's container as a local process: `python` is this interpreter, the working directory
    stands for the image's /app, and `env` stands for the network (a storage server's address)."""

    def __init__(self, workdir, env, log_dir):
        self.workdir, self.env, self.log_dir = workdir, env, log_dir
        self.runs = []  # (execution, index, attempt, exit code)
        self._lock = threading.Lock()

    def __call__(self, execution, task_spec, index, attempt):
        container = task_spec["containers"][0]
        command = [*container.get("command", []), *container.get("args", [])]
        if command and command[0] == "python":
            command[0] = sys.executable
        name = execution["metadata"]["name"]
        env = {**os.environ, **{e["name"]: e.get("value", "") for e in container.get("env", [])}, **self.env,
               "CLOUD_RUN_JOB": execution["metadata"]["labels"]["run.googleapis.com/job"], "CLOUD_RUN_EXECUTION": name,
               "CLOUD_RUN_TASK_INDEX": str(index), "CLOUD_RUN_TASK_COUNT": str(execution["spec"].get("taskCount", 1)),
               "CLOUD_RUN_TASK_ATTEMPT": str(attempt)}
        timeout = float(task_spec.get("timeoutSeconds", 600))
        with open(self.log_dir / f"{name}-task{index}-attempt{attempt}.log", "wb") as log:
            process = subprocess.Popen(command, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
            started = time.monotonic()
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:  # Cloud Run stops a task at its timeout, SIGTERM first
                process.terminate()
                try:
                    code = process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    code = process.wait()
        with self._lock:
            self.runs.append((name, index, attempt, code, round(time.monotonic() - started, 2)))
        return code

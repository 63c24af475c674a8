"""Cloud Run revisions as real local processes of the function, with their probes evaluated.

Each revision runs `functions-framework --target=predict` from the repository with the image's
environment, the revision's env vars and the variables Cloud Run adds (K_SERVICE, K_REVISION,
K_CONFIGURATION, PORT). The one difference from Cloud Run: PORT is a free local port rather than the
container port (8080), so that many revisions can listen at once; probes target that port.

The startup probe decides readiness exactly as its spec says (initialDelaySeconds, periodSeconds,
timeoutSeconds, failureThreshold; an HTTP probe passes on 200-399). Without one, Cloud Run's
default applies: a TCP probe that waits up to 240 s for the port to open. A liveness probe runs
once the revision is ready; on failureThreshold failures in a row the instance is restarted, as
Cloud Run restarts a container. What the process writes becomes Cloud Logging entries.
"""

import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.fakes.logging_api import revision_labels
from tests.net import free_port

ROOT = Path(__file__).resolve().parents[2]
# The image's ENV (Dockerfile), without the paths that only exist inside it.
IMAGE_ENV = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "WORKERS": "1",
             "CLOUD_RUN_TIMEOUT_SECONDS": "0"}
_HOST_ENV = ("HOME", "LANG", "LC_ALL", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
DEFAULT_STARTUP_PROBE = {"tcpSocket": {"port": 8080}, "timeoutSeconds": 240, "periodSeconds": 240,
                         "failureThreshold": 1}
_TROUBLESHOOTING = "For more troubleshooting guidance, see https://cloud.google.com/run/docs/troubleshooting#container-failed-to-start"


def _logs_url(project, service, revision):
    return (f"https://console.cloud.google.com/logs/viewer?project={project}&resource=cloud_run_revision/"
            f"service_name/{service}/revision_name/{revision}")


class RevisionInstance:
    """One instance of one revision: a process, its log readers, and its probe loop."""

    def __init__(self, project, region, service, revision, workdir, logs, platform_env, on_outcome):
        self.project, self.region, self.service = project, region, service
        self.name = revision["metadata"]["name"]
        container = revision["spec"]["containers"][0]
        self.env = {e["name"]: e.get("value", "") for e in container.get("env", []) if "name" in e}
        self.startup = container.get("startupProbe") or DEFAULT_STARTUP_PROBE
        self.liveness = container.get("livenessProbe")
        self.workdir, self.logs, self.platform_env = workdir, logs, platform_env
        self.on_outcome = on_outcome
        self.state = "starting"  # starting -> ready | failed; stopped at the end
        self.port = None
        self.process = None
        self.restarts = 0
        self.probes = []  # (kind, path or "tcp", outcome) of every probe, for tests to inspect
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"revision-{self.name}", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self):
        self._thread.start()
        return self

    def _spawn(self):
        self.port = free_port()
        env = {k: os.environ[k] for k in _HOST_ENV if k in os.environ}
        env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        # Each instance has a /tmp of its own (in memory on Cloud Run): nothing cached is shared.
        env["TMPDIR"] = str(self.workdir / f"{self.name}.{self.restarts}.tmp")
        os.makedirs(env["TMPDIR"], exist_ok=True)
        env.update(IMAGE_ENV)
        env.update(self.platform_env)
        env.update(self.env)
        env.update(PORT=str(self.port), K_SERVICE=self.service, K_REVISION=self.name,
                   K_CONFIGURATION=self.service)
        binary = ROOT / ".venv" / "bin" / "functions-framework"
        self.process = subprocess.Popen([str(binary), "--target=predict", "--host=127.0.0.1"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        labels = revision_labels(self.project, self.service, self.name, self.region)
        log_file = open(self.workdir / f"{self.name}.{self.restarts}.log", "w")  # noqa: SIM115 (closed by the readers)
        closing = threading.Semaphore(0)
        for stream, pipe in (("stdout", self.process.stdout), ("stderr", self.process.stderr)):
            threading.Thread(target=self._read, args=(pipe, stream, labels, log_file, closing), daemon=True).start()

    def _read(self, pipe, stream, labels, log_file, closing):
        for line in pipe:
            line = line.rstrip("\n")
            log_file.write(f"{stream}: {line}\n")
            log_file.flush()
            self.logs.write_line(line, labels, stream)
        pipe.close()
        if closing.acquire(blocking=False):  # the second reader to finish closes the file
            log_file.close()
        else:
            closing.release()

    def _run(self):
        try:
            self._spawn()
        except OSError as error:  # e.g. no functions-framework in .venv: the container cannot start
            self.state = "failed"
            self.on_outcome(self.name, False, f"The user-provided container failed to start: {error}")
            return
        ok, message = self._startup()
        if self._stopping.is_set():
            return
        self.state = "ready" if ok else "failed"
        self.on_outcome(self.name, ok, message)
        if ok and self.liveness:
            self._live()

    def _terminate(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()

    def _reap(self):
        if self.process is None:
            return
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stop_begin(self):
        self._stopping.set()
        self.state = "stopped"
        self._terminate()

    def stop_end(self):
        self._reap()
        self._thread.join(timeout=5)

    # -- probes -------------------------------------------------------------------------------
    def _attempt(self, probe, kind):
        timeout = float(probe.get("timeoutSeconds", 1))
        if "httpGet" in probe:
            path = probe["httpGet"].get("path", "/")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as answer:
                    ok = 200 <= answer.status < 400
            except urllib.error.HTTPError as error:
                ok = 200 <= error.code < 400
            except OSError:
                ok = False
            self.probes.append((kind, path, ok))
            return ok
        # TCP: the port opens within the timeout
        deadline = time.monotonic() + timeout
        while not self._stopping.is_set() and self.process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                self.probes.append((kind, "tcp", True))
                return True
            except OSError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.1)
        self.probes.append((kind, "tcp", False))
        return False

    def _startup(self):
        probe = self.startup
        if self._stopping.wait(float(probe.get("initialDelaySeconds", 0))):
            return False, "stopped"
        period = float(probe.get("periodSeconds", 10))
        for _ in range(int(probe.get("failureThreshold", 3))):
            began = time.monotonic()
            if self.process.poll() is not None:
                break
            if self._attempt(probe, "startup"):
                return True, ""
            if self._stopping.wait(max(0.0, period - (time.monotonic() - began))):
                return False, "stopped"
        logs = f"Logs URL: {_logs_url(self.project, self.service, self.name)}"
        if self.process.poll() is not None:
            return False, (f"The user-provided container failed to start and listen on the port defined "
                           f"provided by the PORT=8080 environment variable within the allocated timeout "
                           f"(it exited with code {self.process.returncode}). Logs for this revision might "
                           f"contain more information.\n\n{logs}\n{_TROUBLESHOOTING}")
        if "httpGet" in probe:
            return False, ("The user-provided container failed the configured startup probe checks. Logs "
                           f"for this revision might contain more information.\n\n{logs}\n{_TROUBLESHOOTING}")
        return False, ("The user-provided container failed to start and listen on the port defined provided "
                       "by the PORT=8080 environment variable within the allocated timeout. This can happen "
                       "when the container port is misconfigured or if the timeout is too short. The health "
                       "check timeout can be extended. Logs for this revision might contain more "
                       f"information.\n\n{logs}\n{_TROUBLESHOOTING}")

    def _live(self):
        probe = self.liveness
        period = float(probe.get("periodSeconds", 10))
        failures = 0
        if self._stopping.wait(float(probe.get("initialDelaySeconds", 0))):
            return
        while not self._stopping.wait(period):
            failures = 0 if self._attempt(probe, "liveness") else failures + 1
            if failures >= int(probe.get("failureThreshold", 3)) and not self._stopping.is_set():
                self._restart()
                failures = 0

    def _restart(self):
        """Cloud Run replaces a container that fails its liveness probe; it serves nothing meanwhile."""
        self.state = "starting"
        self._terminate()
        self._reap()
        self.restarts += 1
        self._spawn()
        ok, _ = self._startup()
        if not self._stopping.is_set():
            self.state = "ready" if ok else "failed"


class Instances:
    """The revision processes of one fake Cloud Run; `port(revision)` is set while one is ready."""

    def __init__(self, project, region, logs, workdir, platform_env=None):
        self.project, self.region = project, region
        self.logs = logs
        self.workdir = Path(workdir)
        self.platform_env = dict(platform_env or {})
        self.running = {}
        self.lock = threading.Lock()

    def start(self, service, revision, on_outcome):
        """Starts `revision` (a Knative Revision dict); `on_outcome(name, ok, message)` is called once."""
        instance = RevisionInstance(self.project, self.region, service, revision, self.workdir, self.logs,
                                    self.platform_env, on_outcome)
        with self.lock:
            self.running[instance.name] = instance
        return instance.start()

    def get(self, revision):
        with self.lock:
            return self.running.get(revision)

    def port(self, revision):
        instance = self.get(revision)
        return instance.port if instance is not None and instance.state == "ready" else None

    def stop(self, revision):
        """Stops a deleted revision's instance, if it has one."""
        with self.lock:
            instance = self.running.pop(revision, None)
        if instance is not None:
            instance.stop_begin()
            instance.stop_end()

    def stop_all(self):
        with self.lock:
            instances = list(self.running.values())
        for instance in instances:  # SIGTERM all first: they shut down in parallel
            instance.stop_begin()
        for instance in instances:
            instance.stop_end()

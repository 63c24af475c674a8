"""Fixtures' plumbing for driving ./deploy.sh with the real gcloud CLI against the Cloud Run fake."""

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.net import free_port

ROOT = Path(__file__).resolve().parents[2]
PROJECT, REGION, SERVICE = "demo-project", "europe-west1", "predictor"
IMAGE_REPO = f"{REGION}-docker.pkg.dev/{PROJECT}/releases/{SERVICE}"
# Inherited values of these would leak a developer's settings into a run, so each run starts clean.
_SCRUBBED_PREFIXES = ("CLOUDSDK_", "MODEL_", "RUN_", "SMOKE_", "ALLOW_UNAUTHENTICATED", "GCLOUD",
                      "PROJECT_ID", "REGION", "SERVICE", "IMAGE_REPO", "PYTHON")


def gcloud_or_explain():
    """The gcloud path, or a message naming what is missing (gcloud comes from the machine image)."""
    found = shutil.which("gcloud")
    return found, (None if found else "the gcloud CLI (Google Cloud SDK, dpkg google-cloud-cli) is not "
                   "on PATH; these tests drive the real CLI and cannot run without it")


def run_release(fake, config_dir, *args, timeout=120, **overrides):
    """Runs ./deploy.sh ARGS against `fake`; keyword overrides set (str) or unset (None) env vars."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update(fake.gcloud_env(config_dir))
    env.update(PROJECT_ID=PROJECT, REGION=REGION, SERVICE=SERVICE, IMAGE_REPO=IMAGE_REPO,
               PYTHON=sys.executable)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([str(ROOT / "deploy.sh"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


class FunctionServer:
    """The real prediction function under functions-framework on 127.0.0.1, for smoke tests."""

    def __init__(self, model_uri, log_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, MODEL_URI=str(model_uri), PORT=str(self.port))
        binary = ROOT / ".venv" / "bin" / "functions-framework"
        self.log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [str(binary), "--target=predict", "--host=127.0.0.1", f"--port={self.port}"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_listening(self, seconds=60):
        """Waits until the server answers GET / at all (ready or not); raises if it died."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"function server exited with {self.process.returncode}; "
                                   f"see {self.log.name}")
            try:
                urllib.request.urlopen(self.url + "/", timeout=2).close()
                return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"function server not listening on {self.url} after {seconds}s")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

"""Fixtures' plumbing for driving ./deploy.sh with the real gcloud CLI against the Cloud Run fake."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from service.config import VARIABLES

ROOT = Path(__file__).resolve().parents[2]
PROJECT, REGION, SERVICE = "demo-project", "europe-west1", "predictor"
IMAGE_REPO = f"{REGION}-docker.pkg.dev/{PROJECT}/releases/{SERVICE}"
# Inherited values of these would leak a developer's settings into a run, so each run starts clean.
_SCRUBBED_PREFIXES = ("CLOUDSDK_", "MODEL_", "RUN_", "SMOKE_", "COMPARE_", "CANARY_", "ALLOW_UNAUTHENTICATED",
                      "GCLOUD", "PROJECT_ID", "REGION", "SERVICE", "IMAGE_REPO", "PYTHON",
                      *(v.name for v in VARIABLES))
# Probing every second keeps a deploy's wait short (the default, 2 s, is sized for Cloud Run).
TEST_SETTINGS = {"RUN_STARTUP_PROBE_PERIOD": "1", "RUN_STARTUP_PROBE_FAILURES": "30"}


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
               PYTHON=sys.executable, **TEST_SETTINGS)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([str(ROOT / "deploy.sh"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


class Load:
    """Steady prediction traffic to a URL from a few threads (about `rate` requests a second in all),
    as users would send through the service URL while a canary is watched. Bounded: it runs until
    stopped, at most `seconds`."""

    def __init__(self, url, rate=40.0, threads=8, seconds=120.0):
        self.url = url.rstrip("/") + "/predict"
        self.pause = threads / rate
        self.deadline = time.monotonic() + seconds
        self.statuses = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            began = time.monotonic()
            request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    self.statuses.append(answer.status)
            except urllib.error.HTTPError as error:
                self.statuses.append(error.code)
            except OSError:
                self.statuses.append(None)
            self._stop.wait(max(0.0, self.pause - (time.monotonic() - began)))

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

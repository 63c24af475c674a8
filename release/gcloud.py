"""The only place that runs the gcloud CLI, so every call carries --project, --region and --quiet."""

import json
import os
import shutil
import subprocess

from release.errors import ReleaseError


class Gcloud:
    """Runs `gcloud run ...` for one Target; GCLOUD overrides the binary."""

    def __init__(self, target, binary=None):
        self.target = target
        self.binary = binary or os.environ.get("GCLOUD", "gcloud")
        if shutil.which(self.binary) is None:
            raise ReleaseError(f"gcloud CLI not found ({self.binary}); install the Google Cloud SDK "
                               "or set GCLOUD to its path")

    def _run(self, args, quiet_stderr):
        command = [self.binary, *args, f"--project={self.target.project}",
                   f"--region={self.target.region}", "--quiet"]
        # Changes show gcloud's own progress on stderr; reads keep it for the error message.
        result = subprocess.run(command, stdout=subprocess.PIPE, text=True,
                                stderr=subprocess.PIPE if quiet_stderr else None, check=False)
        if result.returncode != 0:
            raise ReleaseError(_last_error(result.stderr) or f"gcloud {' '.join(args[:3])} failed "
                               f"(exit {result.returncode})")
        return result.stdout

    def read(self, *args):
        """A read-only call whose JSON output is parsed."""
        return json.loads(self._run([*args, "--format=json"], quiet_stderr=True) or "null")

    def change(self, *args):
        """A call that changes the service; gcloud's progress goes straight to stderr.

        Returns gcloud's JSON result (the service for deploy, the traffic targets for
        update-traffic), which saves a second describe call.
        """
        return json.loads(self._run([*args, "--format=json"], quiet_stderr=False) or "null")

    def service(self):
        """The Knative service object, or None if it does not exist yet."""
        try:
            return self.read("run", "services", "describe", self.target.service)
        except ReleaseError as error:
            if "Cannot find service" in str(error):
                return None
            raise

    def revisions(self):
        return self.read("run", "revisions", "list", f"--service={self.target.service}") or []

    def identity_token(self, audience=None):
        args = ["auth", "print-identity-token"] + ([f"--audiences={audience}"] if audience else [])
        result = subprocess.run([self.binary, *args, "--quiet"], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ReleaseError("no identity token from gcloud (" + (_last_error(result.stderr) or "failed")
                               + "); log in with `gcloud auth login` or set SMOKE_TOKEN")
        return result.stdout.strip()


def _last_error(stderr):
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return (errors or lines or [""])[-1]

"""The only place that runs the gcloud CLI, so every call carries --project (and --region) and --quiet."""

import json
import os
import re
import shutil
import subprocess
import sys
import threading

from release import traffic
from release.errors import ReleaseError

_AUTH_NOTE = re.compile(r"\s*This command is authenticated .*$")


def binary(path=None):
    """The gcloud to run: `path`, else GCLOUD, else gcloud on PATH; ReleaseError when there is none."""
    found = path or os.environ.get("GCLOUD", "gcloud")
    if shutil.which(found) is None:
        raise ReleaseError(f"gcloud CLI not found ({found}); install the Google Cloud SDK or set GCLOUD to its path")
    return found


def error_line(stderr):
    """What went wrong, from gcloud's stderr: its last ERROR line (else its last line), without the
    note about which credentials the call used."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return _AUTH_NOTE.sub("", (errors or lines or [""])[-1])


def token(path, args, hint, kind="access"):
    """What `gcloud auth print-access-token` (or print-identity-token) prints; ReleaseError naming
    `hint` when gcloud has no credentials."""
    result = subprocess.run([path, *args, "--quiet"], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise ReleaseError(f"no {kind} token from gcloud ({error_line(result.stderr) or 'failed'}); {hint}")
    return result.stdout.strip()


class Gcloud:
    """Runs `gcloud ...` for one Target; GCLOUD overrides the binary."""

    def __init__(self, target, binary_path=None):
        self.target = target
        self.binary = binary(binary_path)

    def _run(self, args, show_progress, regional=True):
        command = [self.binary, *args, f"--project={self.target.project}",
                   *([f"--region={self.target.region}"] if regional else []), "--quiet"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if show_progress:
            # Changes show gcloud's own progress as it comes, and keep it for the error message;
            # stdout is drained meanwhile so a large answer cannot block gcloud.
            out = []
            reader = threading.Thread(target=lambda: out.append(process.stdout.read()), daemon=True)
            reader.start()
            lines = []
            for line in process.stderr:
                sys.stderr.write(line)
                sys.stderr.flush()
                lines.append(line)
            reader.join()
            stdout, stderr = out[0], "".join(lines)
        else:
            stdout, stderr = process.communicate()
        process.wait()
        if process.returncode != 0:
            raise ReleaseError(error_line(stderr) or f"gcloud {' '.join(args[:3])} failed "
                               f"(exit {process.returncode})")
        return stdout

    def read(self, *args, regional=True):
        """A read-only call whose JSON output is parsed."""
        return json.loads(self._run([*args, "--format=json"], False, regional) or "null")

    def change(self, *args):
        """A call that changes the service; gcloud's progress goes to stderr as it comes.

        Returns gcloud's JSON result (the service for deploy, the traffic targets for
        update-traffic), which saves a second describe call.
        """
        return json.loads(self._run([*args, "--format=json"], True) or "null")

    def update_traffic(self, *args, settled, say=True):
        """`gcloud run services update-traffic SERVICE ARGS`; the served {revision: percent} after it.

        After a revision fails to start, Cloud Run reports that failure (ConfigurationsReady False)
        on later operations until a revision is ready again, so gcloud can exit non-zero for a
        traffic change that took effect. Then the service is read back and `settled(service)` says
        whether it did; if so, that is a success (said on stderr unless `say` is false).
        """
        try:
            return traffic.served_by(self.change("run", "services", "update-traffic", self.target.service, *args))
        except ReleaseError as error:
            service = self.service()
            if service is None or not settled(service):
                raise
            if say:
                print(f"deploy.sh: gcloud reported {error}, but the service shows the change made", file=sys.stderr)
            return traffic.serving(service)

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

    def revision(self, name):
        return self.read("run", "revisions", "describe", name)

    def log_entries(self, log_filter, limit=1, freshness="1d"):
        """Newest first: Cloud Logging entries matching `log_filter` (needs roles/logging.viewer)."""
        return self.read("logging", "read", log_filter, f"--limit={limit}", f"--freshness={freshness}",
                         regional=False) or []

    def storage_text(self, uri):
        """The text of a Cloud Storage object (`gcloud storage cat`)."""
        return self._run(["storage", "cat", uri], False, regional=False)

    def access_token(self):
        """An OAuth access token for Google APIs gcloud has no command for (Cloud Monitoring reads)."""
        return token(self.binary, ["auth", "print-access-token"], "log in with `gcloud auth login`")

    def identity_token(self, audience=None):
        args = ["auth", "print-identity-token"] + ([f"--audiences={audience}"] if audience else [])
        return token(self.binary, args, "log in with `gcloud auth login` or set SMOKE_TOKEN", "identity")

"""gcloud calls for the project as a whole (setup, doctor, observe): every call carries --project
and --quiet, reads run side by side, and a resource that is not there reads as None.

The release commands change the service through release.gcloud; this runs the calls around it
(Resource Manager, Service Usage, IAM, Artifact Registry, Cloud Storage, Logging, Monitoring), and
doctor's reads of the service too, so that they run side by side with the rest.
"""

import json
import re
import shlex
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

from release import gcloud
from release.errors import ReleaseError
from release.gcloud import error_line

# gcloud's own start-up is most of a call's cost, so a few at once save most of the wait.
_WORKERS = 4
_NOT_FOUND = re.compile(r"\bNOT_FOUND\b|\bnot found\b|\bdoes not exist\.|\b404\b|\bCannot find\b")


class NotFound(ReleaseError):
    """gcloud said the resource does not exist."""


class Cloud:
    """Runs gcloud for one project; GCLOUD overrides the binary."""

    def __init__(self, project, binary=None):
        self.project = project
        self.binary = gcloud.binary(binary)

    def shown(self, *args):
        """The command as a user would type it (what setup prints and doctor suggests)."""
        return " ".join(_quoted(arg) for arg in ("gcloud", *args, f"--project={self.project}"))

    def _run(self, args):
        command = [self.binary, *args, f"--project={self.project}", "--quiet", "--format=json"]
        # gcloud's progress is kept back: calls run side by side, and the caller prints each step.
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            message = error_line(result.stderr) or f"gcloud {' '.join(args[:3])} failed (exit {result.returncode})"
            raise (NotFound if _NOT_FOUND.search(message) else ReleaseError)(message)
        return json.loads(result.stdout or "null")

    def read(self, *args):
        """A read-only call's JSON; raises NotFound or ReleaseError."""
        return self._run(args)

    def find(self, *args):
        """Like read, but None when the resource does not exist."""
        try:
            return self._run(args)
        except NotFound:
            return None

    def change(self, *args):
        """A call that changes something (kept apart from read so the two are told apart in review)."""
        return self._run(args)

    def change_with_file(self, args, flag, content):
        """A change whose configuration goes in a file (--config-from-file): JSON, which is YAML too."""
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="deploy-sh-") as handle:
            json.dump(content, handle)
            handle.flush()
            return self.change(*args, f"{flag}={handle.name}")

    def access_token(self):
        """gcloud's OAuth access token; raises ReleaseError when gcloud has no credentials."""
        return gcloud.token(self.binary, ["auth", "print-access-token"], "log in with `gcloud auth login`")


def _quoted(arg):
    """shlex.quote, but "..." for an argument whose only trouble is a single quote (a CEL condition)."""
    if "'" in arg and not set('"$`\\!') & set(arg):
        return f'"{arg}"'
    return shlex.quote(arg)


def together(calls):
    """Runs {key: no-argument function} side by side; {key: result, or the ReleaseError it raised}."""
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        futures = {key: pool.submit(_catching, call) for key, call in calls.items()}
        return {key: future.result() for key, future in futures.items()}


def _catching(call):
    try:
        return call()
    except ReleaseError as error:
        return error


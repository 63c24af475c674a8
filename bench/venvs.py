"""Every system runs from its own virtual environment under bench/.peers/, built from pinned requirements.

Our function gets the production requirements.txt only, as in the image: the development venv also
holds pandas and pytest, which scikit-learn imports when present (~1.5 s more cold start here). A venv
is named after its requirements file's hash, so editing the pins builds a fresh one and an unchanged
file reuses the cached one (a marker file says the install finished).
"""

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys

from bench.plan import PEERS_DIR, REPO_DIR, VENVS_DIR

REQUIREMENTS = {
    "ours": REPO_DIR / "requirements.txt",
    "ours-onnx": REPO_DIR / "requirements-onnx.txt",
    "fastapi": PEERS_DIR / "fastapi.txt",
    # FastAPI for DataFrame models: the same stack plus pandas, kept apart so that the FastAPI serving
    # the numeric models starts as it would without pandas installed.
    "fastapi-frame": PEERS_DIR / "fastapi_frame.txt",
    "mlserver": PEERS_DIR / "mlserver.txt",
}

_DONE_MARKER = ".installed"


def _base_python() -> str:
    # The interpreter behind our own venv, so peers run the same Python build as our function.
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(pathlib.Path(sys.base_prefix) / "bin" / version)


def _uv() -> str:
    # uv from our own venv (a dev dependency) first, then from PATH.
    found = shutil.which("uv", path=os.pathsep.join([str(pathlib.Path(sys.executable).parent), os.environ["PATH"]]))
    if found is None:
        raise FileNotFoundError("uv is needed to build the benchmark's venvs: add it to requirements-dev or PATH")
    return found


def ensure(system: str, log=print) -> pathlib.Path:
    """Returns the bin/ directory of the system's venv, creating it first if needed."""
    requirements = REQUIREMENTS[system]
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    venv = VENVS_DIR / f"{system}-{digest}"
    if (venv / _DONE_MARKER).exists():
        return venv / "bin"
    log(f"installing {system} into {venv.relative_to(VENVS_DIR.parent.parent)} ...")
    subprocess.run([_uv(), "venv", "-q", "--clear", "--python", _base_python(), str(venv)], check=True)
    # Byte-compiled at install time, so no system pays for compiling on its first cold start.
    subprocess.run(
        [_uv(), "pip", "install", "-q", "--native-tls", "--compile-bytecode",
         "--python", str(venv / "bin" / "python"), "-r", str(requirements)],
        check=True,
    )
    (venv / _DONE_MARKER).write_text(digest + "\n")
    return venv / "bin"

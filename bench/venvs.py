"""Every system runs from its own virtual environment under bench/.peers/, built from pinned requirements.

Our function gets the production requirements.txt only, as in the image: the development venv also
holds pandas and pytest, which scikit-learn imports when present (~1.5 s more cold start here). A venv
is named after its requirements file's hash, so editing the pins builds a fresh one and an unchanged
file reuses the cached one (a marker file says the install finished).

Files are copied into each venv, not hard-linked from uv's cache (its default): a shared library's
pages count in PSS split between every process on the machine that maps the same file, so with
links a server's PSS would shrink whenever anyone else (another venv, another test run) had NumPy
or SciPy loaded. Copied, they are shared only within the server's own processes, as in a container.
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
    "ours-onnx": REPO_DIR / "requirements-compiled.txt",
    "fastapi": PEERS_DIR / "fastapi.txt",
    # FastAPI for DataFrame models: the same stack plus pandas, kept apart so that the FastAPI serving
    # the numeric models starts as it would without pandas installed.
    "fastapi-frame": PEERS_DIR / "fastapi_frame.txt",
    "mlserver": PEERS_DIR / "mlserver.txt",
}

# Our function's venvs run as the image does, with PYTHONOPTIMIZE=2: byte-compiled at that level too.
_OPTIMIZED = ("ours", "ours-onnx")
_DONE_MARKER = ".installed"
_INSTALL_MODE = "--link-mode=copy"  # part of the venv's name, with _OPTIMIZED: other venvs are not reused


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
    recipe = f"{_INSTALL_MODE} {system in _OPTIMIZED}".encode()
    digest = hashlib.sha256(requirements.read_bytes() + recipe).hexdigest()[:12]
    venv = VENVS_DIR / f"{system}-{digest}"
    if (venv / _DONE_MARKER).exists():
        return venv / "bin"
    log(f"installing {system} into {venv.relative_to(VENVS_DIR.parent.parent)} ...")
    subprocess.run([_uv(), "venv", "-q", "--clear", "--python", _base_python(), str(venv)], check=True)
    # Byte-compiled at install time, so no system pays for compiling on its first cold start.
    subprocess.run(
        [_uv(), "pip", "install", "-q", "--native-tls", "--compile-bytecode", _INSTALL_MODE,
         "--python", str(venv / "bin" / "python"), "-r", str(requirements)],
        check=True,
    )
    if system in _OPTIMIZED:
        compile_optimized(venv / "bin" / "python", next((venv / "lib").glob("python3*/site-packages")))
    (venv / _DONE_MARKER).write_text(digest + "\n")
    return venv / "bin"


def compile_optimized(python: pathlib.Path, *dirs: pathlib.Path) -> None:
    """Byte-compiles `dirs` for PYTHONOPTIMIZE=2 (docstrings and asserts left out), as the image is.
    Files that do not compile (a package's Python 2 leftovers) are skipped, as at install."""
    subprocess.run([str(python), "-OO", "-m", "compileall", "-q", "-j", "0", *map(str, dirs)],
                   check=False, capture_output=True)

"""The built-in model, verified when the image is built and kept in a form that loads without skops.

`python -m model bake` (an image build step, after `python -m model train`) loads the model directory
through the full safe path (SHA-256 against the manifest, skops with the allow-list of types, the
scikit-learn version check), then writes the estimator it got with pickle to `baked.pkl`, and
`baked.json`: the pickle's SHA-256, the SHA-256 of the skops artifact it was verified from, and the
scikit-learn, numpy and Python versions it was written with. Loading it then costs an unpickle
instead of importing skops (which imports every scikit-learn estimator module, ~0.5 s) and walking
the skops archive.

Pickle runs code when loaded, so the baked form is honoured for one directory only: the function's
built-in model directory (`model.DEFAULT_MODEL_DIR`; in the image /app/model/artifacts, owned by root
and read-only to the server's user). Those files came with the code: whoever can change them can
change the code as well. A model named by MODEL_URI anywhere else (a copy of that directory included)
or fetched from Cloud Storage never uses it, and `publish` never uploads it. Before unpickling, the
loader checks the pickle's SHA-256, that it was made from the very artifact the manifest names, and
the library versions; if any check fails it says why in the log and loads the artifact the full way.
"""

import json
import logging
import pathlib
import pickle
import platform

from model import DEFAULT_MODEL_DIR, sources
from model import manifest as manifests
from model.files import write_atomic

log = logging.getLogger("model")

PICKLE_NAME = "baked.pkl"
RECORD_NAME = "baked.json"


class Stale(Exception):
    """The baked form does not belong to this artifact or these libraries; the message says how."""


def applies(uri: str, path: pathlib.Path) -> bool:
    """True only for a local path to the function's own model directory (or its manifest)."""
    return sources.scheme_of(uri) in ("", "file") and is_builtin(path)


def is_builtin(path: pathlib.Path) -> bool:
    """`path` is the built-in model directory or its manifest, compared after resolving links."""
    path = pathlib.Path(path).resolve()
    if path.name == manifests.MANIFEST_NAME:
        path = path.parent
    return path == DEFAULT_MODEL_DIR.resolve()


def _versions() -> dict:
    import numpy
    import sklearn

    return {"scikit-learn": sklearn.__version__, "numpy": numpy.__version__, "python": platform.python_version()}


def write(model_dir: pathlib.Path, estimator, manifest: dict) -> dict:
    """Writes baked.pkl and baked.json for an estimator that was just loaded the full way from model_dir."""
    data = pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
    write_atomic(model_dir / PICKLE_NAME, data)
    record = {"file": PICKLE_NAME, "sha256": manifests.sha256_of(model_dir / PICKLE_NAME), "size": len(data),
              "artifact_sha256": manifest["artifact"]["sha256"], "versions": _versions()}
    write_atomic(model_dir / RECORD_NAME, (json.dumps(record, indent=2) + "\n").encode())
    return record


def check(model_dir: pathlib.Path, manifest: dict) -> pathlib.Path:
    """The pickle to load, after every check; Stale (saying which failed) or FileNotFoundError if none."""
    try:
        record = json.loads((model_dir / RECORD_NAME).read_text())
    except ValueError as e:
        raise Stale(f"{RECORD_NAME} does not parse: {e}") from None
    if not isinstance(record, dict) or record.get("file") != PICKLE_NAME:
        raise Stale(f"{RECORD_NAME} does not name {PICKLE_NAME}")
    if record.get("artifact_sha256") != manifest["artifact"]["sha256"]:
        raise Stale("it was made from another artifact than the manifest names (run `python -m model bake` again)")
    if record.get("versions") != _versions():
        raise Stale(f"it was written with {record.get('versions')}, but {_versions()} are running")
    path = model_dir / PICKLE_NAME
    try:
        actual = manifests.sha256_of(path)
    except FileNotFoundError:
        raise Stale(f"{RECORD_NAME} names {PICKLE_NAME}, which is missing") from None
    if actual != record.get("sha256"):
        raise Stale(f"{PICKLE_NAME} has SHA-256 {actual}, but {RECORD_NAME} expects {record.get('sha256')}")
    return path


def read(model_dir: pathlib.Path, manifest: dict, timeline):
    """The estimator from the baked form, or None (logged when one exists but fails a check)."""
    if not is_builtin(model_dir):
        return None
    try:
        with timeline.step("verify"):
            path = check(model_dir, manifest)
        with timeline.step("load"), open(path, "rb") as f:
            estimator = pickle.load(f)  # noqa: S301 - the built-in directory only, checked above; see the module docstring
    except FileNotFoundError:  # no baked.json: there is no baked form
        return None
    except Exception as e:  # noqa: BLE001 - any failure of the shortcut falls back to the full checks
        _ignored(model_dir, manifest, e if isinstance(e, (Stale, OSError)) else f"it does not unpickle ({type(e).__name__})")
        return None
    timeline.details["form"] = PICKLE_NAME
    return estimator


def _ignored(model_dir: pathlib.Path, manifest: dict, reason) -> None:
    log.warning(f"ignoring the baked form of {model_dir}: {reason}; loading {manifest['artifact']['file']} instead",
                extra={"event": "baked_model_ignored", "reason": str(reason)})

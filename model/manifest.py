"""The manifest: a JSON file beside the artifact that says what it is and how to check it."""

import datetime
import hashlib
import json
import pathlib
import platform

from model.errors import ModelIntegrityError, ModelNotFound, ModelUnreadable
from model.schema import Schema, SchemaError

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
SAFE_FORMATS = ("skops",)
PICKLE_FORMATS = ("pickle", "joblib")
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


def sha256_of(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build(*, name, version, estimator, features, classes, task, artifact: pathlib.Path, fmt="skops",
          evaluation=None, runtime="sklearn", compiled=None, schema: Schema | None = None,
          examples: dict | None = None) -> dict:
    """The manifest for an artifact just written (its compiled form, input schema and examples, when given)."""
    import numpy
    import sklearn

    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "framework": {"scikit-learn": sklearn.__version__, "numpy": numpy.__version__, "python": platform.python_version()},
        "estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "task": task,
        "features": {"names": list(features), "count": len(features)},
        "classes": classes,
        "artifact": {"file": artifact.name, "format": fmt, "sha256": sha256_of(artifact), "size": artifact.stat().st_size},
        "runtime": runtime,
        **({"compiled": compiled} if compiled else {}),
        **({"evaluation": evaluation} if evaluation else {}),
        **({"schema": schema.to_dict()} if schema is not None else {}),
        **({"examples": examples} if examples else {}),
    }


def write(manifest: dict, directory: pathlib.Path) -> pathlib.Path:
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def _file_entry_ok(entry) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("file"), str) and "/" not in entry["file"]
            and entry["file"] not in ("", ".", "..") and isinstance(entry.get("sha256"), str))


def read(path: pathlib.Path) -> dict:
    """Reads and checks a manifest; raises with a message naming the file and the problem."""
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelNotFound(f"manifest {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ModelUnreadable(f"manifest {path} cannot be read: {e}") from None
    except json.JSONDecodeError as e:
        raise ModelIntegrityError(f"manifest {path} is not valid JSON: {e}") from None
    problems = []
    if not isinstance(manifest, dict):
        raise ModelIntegrityError(f"manifest {path} must be a JSON object")
    artifact = manifest.get("artifact")
    if not isinstance(artifact, dict) or not isinstance(artifact.get("file"), str):
        problems.append("artifact.file is missing")
    elif "/" in artifact["file"] or artifact["file"] in ("", ".", ".."):
        problems.append("artifact.file must be a plain file name beside the manifest")
    elif not isinstance(artifact.get("sha256"), str) or len(artifact["sha256"]) != 64:
        problems.append("artifact.sha256 is missing")
    elif artifact.get("format", "skops") not in SAFE_FORMATS + PICKLE_FORMATS:
        problems.append(f"artifact.format {artifact.get('format')!r} is unknown")
    features = manifest.get("features")
    if not isinstance(features, dict) or not isinstance(features.get("names"), list):
        problems.append("features.names is missing")
    elif features.get("count", len(features["names"])) != len(features["names"]):
        problems.append("features.count does not match features.names")
    if manifest.get("runtime", "sklearn") not in ("sklearn", "onnx"):
        problems.append(f"runtime {manifest.get('runtime')!r} is unknown (sklearn or onnx)")
    elif manifest.get("runtime") == "onnx" and not _file_entry_ok(manifest.get("compiled")):
        problems.append("runtime onnx needs compiled.file and compiled.sha256")
    if "schema" in manifest:
        problems.extend(_schema_problems(manifest["schema"], features))
    if not isinstance(manifest.get("framework", {}).get("scikit-learn"), str):
        problems.append("framework.scikit-learn is missing")
    if problems:
        raise ModelIntegrityError(f"manifest {path} is invalid: {'; '.join(problems)}")
    return manifest


def _schema_problems(data, features) -> list[str]:
    try:
        schema = Schema.from_dict(data)
    except SchemaError as e:
        return [str(e)]
    if isinstance(features, dict) and features.get("names") != schema.names:
        return ["schema.features do not name the same features as features.names"]
    return []

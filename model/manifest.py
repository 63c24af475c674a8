"""The manifest: a JSON file beside the artifact that says what it is and how to check it."""

import datetime
import hashlib
import json
import pathlib
import platform

from model.errors import ModelIntegrityError, ModelNotFound, ModelUnreadable
from model.files import write_atomic
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
    write_atomic(path, (json.dumps(manifest, indent=2) + "\n").encode())
    return path


def served_files(manifest: dict) -> list[dict]:
    """The file entries the loader reads for this manifest: the compiled model for the onnx runtime, else
    the artifact; then the example rows, when there are some (the first prediction is made on one)."""
    model = manifest["compiled"] if manifest.get("runtime") == "onnx" else manifest["artifact"]
    return [model] + ([manifest["examples"]] if isinstance(manifest.get("examples"), dict) else [])


def published_files(manifest: dict) -> list[tuple[str, dict]]:
    """(key, entry) of every file a manifest names, in the order they are uploaded."""
    return [(key, manifest[key]) for key in ("artifact", "compiled", "examples") if isinstance(manifest.get(key), dict)]


def file_entry_problems(entry, key: str) -> list[str]:
    """What is wrong with a file entry (`artifact`, `compiled`, `examples`): a plain file name beside
    the manifest, its SHA-256, and, once published, the Cloud Storage generation it was uploaded as."""
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        return [f"{key}.file is missing"]
    if "/" in entry["file"] or "\\" in entry["file"] or entry["file"] in ("", ".", ".."):
        return [f"{key}.file must be a plain file name beside the manifest"]
    sha256 = entry.get("sha256")
    if not isinstance(sha256, str) or len(sha256) != 64:
        return [f"{key}.sha256 is missing"]
    generation = entry.get("generation")
    if generation is not None and (type(generation) is not int or generation < 1):
        return [f"{key}.generation must be a positive integer"]
    return []


def validate(manifest, where) -> dict:
    """The manifest if it is one the loader can trust its checks to; else ModelIntegrityError naming every problem."""
    if not isinstance(manifest, dict):
        raise ModelIntegrityError(f"manifest {where} must be a JSON object")
    problems = file_entry_problems(manifest.get("artifact"), "artifact")
    if not problems and manifest["artifact"].get("format", "skops") not in SAFE_FORMATS + PICKLE_FORMATS:
        problems.append(f"artifact.format {manifest['artifact'].get('format')!r} is unknown")
    features = manifest.get("features")
    if not isinstance(features, dict) or not isinstance(features.get("names"), list):
        problems.append("features.names is missing")
    elif features.get("count", len(features["names"])) != len(features["names"]):
        problems.append("features.count does not match features.names")
    runtime = manifest.get("runtime", "sklearn")
    if runtime not in ("sklearn", "onnx"):
        problems.append(f"runtime {runtime!r} is unknown (sklearn or onnx)")
    elif runtime == "onnx":
        problems += [f"runtime onnx needs {p}" for p in file_entry_problems(manifest.get("compiled"), "compiled")]
    if "examples" in manifest:
        problems += file_entry_problems(manifest["examples"], "examples")
    if "schema" in manifest:
        problems.extend(_schema_problems(manifest["schema"], features))
    framework = manifest.get("framework")
    if not isinstance(framework, dict) or not isinstance(framework.get("scikit-learn"), str):
        problems.append("framework.scikit-learn is missing")
    if problems:
        raise ModelIntegrityError(f"manifest {where} is invalid: {'; '.join(problems)}")
    return manifest


def parse(data: bytes, where) -> dict:
    """A manifest from its bytes (a local file's or a downloaded object's), validated."""
    try:
        manifest = json.loads(data)
    except UnicodeDecodeError as e:
        raise ModelIntegrityError(f"manifest {where} is not UTF-8 text: {e}") from None
    except json.JSONDecodeError as e:
        raise ModelIntegrityError(f"manifest {where} is not valid JSON: {e}") from None
    return validate(manifest, where)


def read(path: pathlib.Path) -> dict:
    """Reads and checks a manifest; raises with a message naming the file and the problem."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelNotFound(f"manifest {path} does not exist") from None
    except OSError as e:
        raise ModelUnreadable(f"manifest {path} cannot be read: {e}") from None
    return parse(data, path)


def _schema_problems(data, features) -> list[str]:
    try:
        schema = Schema.from_dict(data)
    except SchemaError as e:
        return [str(e)]
    if isinstance(features, dict) and features.get("names") != schema.names:
        return ["schema.features do not name the same features as features.names"]
    return []

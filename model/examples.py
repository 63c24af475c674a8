"""Example rows beside the manifest (`examples.jsonl`): inputs the model answered when it was built.

One JSON object per line, keyed by feature name, with JSON-native values (`null` for a missing one).
The manifest names the file with its row count and SHA-256, so release tooling can send the same rows
to two revisions and compare their answers.
"""

import json
import math
import pathlib

from model import manifest as manifests
from model.errors import ModelIntegrityError

EXAMPLES_NAME = "examples.jsonl"
MAX_ROWS = 200


def write(records: list[dict], directory: pathlib.Path) -> dict:
    """Writes up to MAX_ROWS records; returns the manifest's `examples` entry."""
    path = directory / EXAMPLES_NAME
    kept = records[:MAX_ROWS]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, allow_nan=False) + "\n" for r in kept))
    tmp.replace(path)
    return {"file": EXAMPLES_NAME, "rows": len(kept), "sha256": manifests.sha256_of(path)}


def read(directory: pathlib.Path, entry: dict) -> list[dict]:
    """The examples a manifest names, checked against its SHA-256."""
    path = pathlib.Path(directory) / entry["file"]
    if manifests.sha256_of(path) != entry["sha256"]:
        raise ModelIntegrityError(f"{path} does not match the SHA-256 its manifest records")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def records(rows, schema) -> list[dict]:
    """JSON-native records of `rows`: a DataFrame or 2-D array with the schema's columns, or texts."""
    if hasattr(rows, "columns"):
        columns = [rows[name].tolist() for name in schema.names]
    elif schema.layout == "text":
        columns = [list(rows)]
    else:
        columns = [list(column) for column in zip(*(list(r) for r in rows))] or [[] for _ in schema.names]
    return [{f.name: _native(column[i], f.kind) for f, column in zip(schema.features, columns)}
            for i in range(len(columns[0]))]


def _native(value, kind: str):
    """A JSON-native value of the feature's kind; None for a missing one."""
    if hasattr(value, "item"):
        value = value.item()
    # pandas' own missing markers (NA, NaT) are recognised by name: pandas is not imported here.
    if value is None or (isinstance(value, float) and math.isnan(value)) or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if kind == "number":
        return float(value)
    if kind == "integer":
        return int(value)
    if kind == "boolean":
        return bool(value)
    return str(value)

"""Input rows for building and checking a model: a sample file read, rows generated from a schema, and
both turned into what the estimator is called with, as the server builds it.

Rows travel as JSON-native records (one dict per row, keyed by feature name, None for a missing value).
"""

import json
import math
import pathlib

from model.schema import Schema

GENERATED_ROWS = 40
_NUMBERS = (0.0, 1.0, -1.0, 2.5, 10.0, 0.1, 100.0, -7.5, 42.0, 3.0, 0.5, 1000.0)
_INTEGERS = (0, 1, 2, 5, 10, -1, 3, 100, 7, 4)
_TEXTS = ("free prize, claim now", "see you at lunch tomorrow", "", "Hello World", "the report is attached",
          "WIN CASH TODAY!!", "café au lait, s'il vous plaît", "a b c")


class SampleError(ValueError):
    """The sample file cannot be read as input rows; the message names the file and the problem."""


def read_sample(path: pathlib.Path, schema: Schema):
    """The sample as a DataFrame: CSV (strings kept as text) or JSON lines of objects (null is missing)."""
    import pandas as pd

    if not path.is_file():
        raise SampleError(f"sample {path} does not exist or is not a file")
    if path.suffix.lower() == ".csv":
        # A column the model reads as strings stays text even when it looks like numbers ("007"); an
        # empty text is a text, not a missing value.
        strings = {f.name: str for f in schema.features if f.kind == "string"}
        try:
            frame = pd.read_csv(path, dtype=strings, keep_default_na=schema.layout != "text")
        except (ValueError, pd.errors.ParserError) as e:
            raise SampleError(f"sample {path} is not a readable CSV file: {' '.join(str(e).split())}") from None
    elif path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        frame = pd.DataFrame.from_records(_json_lines(path))
        for column in frame.select_dtypes(include="object").columns:
            frame[column] = frame[column].where(frame[column].notna(), math.nan)
    else:
        raise SampleError(f"sample {path} must be a .csv file or JSON lines (.jsonl, .ndjson, .json)")
    if frame.empty:
        raise SampleError(f"sample {path} has no rows")
    frame.columns = [str(c) for c in frame.columns]
    if schema.layout == "text":
        column = schema.names[0] if schema.names[0] in frame.columns else (frame.columns[0] if frame.shape[1] == 1 else None)
        if column is None:
            raise SampleError(f"sample {path} has no {schema.names[0]!r} column (a text model takes one string per row)")
        texts = frame[column]
        if not all(isinstance(t, str) for t in texts):
            raise SampleError(f"sample {path}: every {column!r} value of a text model must be a string")
        return texts.to_frame(schema.names[0])
    return frame  # derive() names the columns the model needs that it lacks


def _json_lines(path: pathlib.Path) -> list[dict]:
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise SampleError(f"sample {path} line {number} is not JSON: {e.msg}") from None
            if not isinstance(record, dict):
                raise SampleError(f"sample {path} line {number} is not a JSON object")
            records.append(record)
    return records


def generate(schema: Schema) -> list[dict]:
    """Rows that exercise the schema: every category, a spread of numbers, gaps where nullable, unseen values."""
    rows = []
    for i in range(GENERATED_ROWS):
        row = {}
        for j, feature in enumerate(schema.features):
            k = i + 3 * j
            if feature.nullable and k % 7 == 3:
                value = None
            elif schema.layout == "text":
                value = _TEXTS[i % len(_TEXTS)]
            elif feature.categories:
                value = feature.categories[k % len(feature.categories)]
                if feature.unknown == "accept" and k % 11 == 5 and feature.kind != "boolean":
                    value = "unseen" if feature.kind == "string" else max(feature.categories) + 1
            elif feature.kind == "string":
                value = "abcd"[k % 4]
            elif feature.kind == "boolean":
                value = k % 2 == 0
            elif feature.kind == "integer":
                value = _INTEGERS[k % len(_INTEGERS)]
            else:
                value = _NUMBERS[k % len(_NUMBERS)]
            row[feature.name] = value
        rows.append(row)
    return rows


def model_input(records: list[dict], schema: Schema):
    """What the estimator is called with for these JSON rows, built as the server builds it."""
    import numpy as np

    if schema.layout == "matrix":
        return np.array([[math.nan if r[n] is None else r[n] for n in schema.names] for r in records], dtype=np.float64)
    columns = {f.name: column(f, [r[f.name] for r in records]) for f in schema.features}
    if schema.layout == "text":
        return columns[schema.names[0]]
    return frame(schema, columns)


def column(feature, values: list):
    """One feature's values (already valid for it; None or NaN where missing) as numpy holds them for the
    model: float64, int64, bool, or object (strings, NaN where missing: scikit-learn's imputers and encoders
    treat NaN, not None, as missing). The one rule the server, batch scoring and packaging share."""
    import numpy as np

    def gap(v):
        return v is None or (type(v) is float and v != v)

    missing = any(gap(v) for v in values)
    if feature.kind == "number" or (feature.kind == "integer" and missing):
        return np.array([math.nan if gap(v) else v for v in values], dtype=np.float64)
    if feature.kind == "integer":
        return np.array(values, dtype=np.int64)
    if feature.kind == "boolean" and not missing:
        return np.array(values, dtype=bool)
    array = np.empty(len(values), dtype=object)
    array[:] = [math.nan if gap(v) else v for v in values]
    return array


def frame(schema: Schema, columns: dict):
    """The DataFrame a model fitted on one is called with: its columns in order, with the dtypes it was fitted on."""
    import pandas as pd

    data = {}
    for feature in schema.features:
        values = columns[feature.name]
        if feature.dtype == "category":
            values = pd.Categorical(values, categories=list(feature.categories) if feature.categories else None)
        elif feature.dtype is not None:
            values = pd.array(values, dtype=feature.dtype)
        data[feature.name] = values
    return pd.DataFrame(data, copy=False)

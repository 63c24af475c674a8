"""Validating rows against a model's input schema, into typed columns (or a float matrix).

Rows come as arrays in schema order, objects keyed by feature name, or (text models) plain strings;
V2 requests may send one array per feature instead (`from_columns`). Every value is checked against
its feature: its kind (number, integer, string, boolean), whether it may be missing (JSON `null`, or
the non-standard `NaN` token), and for encoders that would refuse an unknown category, the categories
the model knows. Every refusal is an InvalidInput naming row, feature and what was expected.

Numeric models ("matrix" layout) take a fast path straight to a float64 matrix; the rest get one
1-D numpy array per feature, built into a DataFrame only when the model is called (`inference.inputs`).
numpy is imported on first use: gunicorn's master imports this module too, and a copy of numpy there
would only take memory.
"""

import dataclasses
import math

from inference.errors import InvalidInput

_NUMBER = (int, float)
FLOAT32_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max
INT64_RANGE = (-(2 ** 63), 2 ** 63 - 1)
_JSON_TYPES = {bool: "boolean", str: "string", list: "array", dict: "object"}
_KIND_NOUN = {"number": "a number", "integer": "an integer", "string": "a string", "boolean": "true or false"}
_SHOWN_CATEGORIES = 20


@dataclasses.dataclass
class Rows:
    """Validated rows: a float64 matrix ("matrix" layout) or one 1-D array per feature (the others)."""

    count: int
    matrix: object = None
    columns: dict | None = None


def describe(value) -> str:
    """A JSON value's type as a client would name it."""
    return "null" if value is None else _JSON_TYPES.get(type(value), "number" if type(value) in _NUMBER else type(value).__name__)


def _where(i: int, j: int, name: str) -> str:
    return f"row {i}, feature {j} ({name})"


def _check_count(instances, max_rows: int, what: str) -> None:
    if not isinstance(instances, list):
        raise InvalidInput(f'"{what}" must be an array of rows, got {describe(instances)}')
    if not instances:
        raise InvalidInput(f'"{what}" is empty; send at least one row')
    if len(instances) > max_rows:
        raise InvalidInput(f'"{what}" has {len(instances)} rows, more than the limit of {max_rows} (MAX_ROWS)')


def from_instances(schema, instances, max_rows: int, what: str = "instances") -> Rows:
    """Rows (arrays, objects keyed by feature name, or strings for a text model) validated against `schema`."""
    _check_count(instances, max_rows, what)
    if schema.layout == "text":
        return _text(schema, instances)
    if schema.layout == "matrix":
        return _matrix(schema, instances)
    names = schema.names
    columns = [[] for _ in names]
    index = None
    for i, row in enumerate(instances):
        if isinstance(row, dict):
            index = index or {name: j for j, name in enumerate(names)}
            row = _row_from_object(row, index, names, i)
        elif not isinstance(row, list):
            raise InvalidInput(f"row {i} must be an array of {len(names)} values or an object keyed by feature name, "
                               f"got {describe(row)}")
        elif len(row) != len(names):
            raise InvalidInput(f"row {i} has {len(row)} values; the model expects {len(names)} features ({', '.join(names)})")
        for j, value in enumerate(row):
            columns[j].append(_value(schema.features[j], value, i, j))
    return Rows(len(instances), columns={f.name: _array(f, c) for f, c in zip(schema.features, columns)})


def from_columns(schema, columns: dict, max_rows: int) -> Rows:
    """One array of values per feature (V2's one tensor per column), validated against `schema`."""
    missing = [name for name in schema.names if name not in columns]
    unknown = [name for name in columns if name not in schema.names]
    if missing or unknown:
        problems = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + (
            [f"unknown {', '.join(map(repr, unknown[:5]))}"] if unknown else [])
        raise InvalidInput(f"inputs must be one tensor per feature ({', '.join(schema.names)}); {'; '.join(problems)}")
    counts = {len(columns[name]) for name in schema.names}
    if len(counts) != 1:
        raise InvalidInput("per-feature inputs must all have the same number of rows")
    _check_count(columns[schema.names[0]], max_rows, "inputs")
    if schema.layout == "matrix":
        return _matrix(schema, [list(row) for row in zip(*(columns[name] for name in schema.names))])
    out = {}
    for j, feature in enumerate(schema.features):
        out[feature.name] = _array(feature, [_value(feature, v, i, j) for i, v in enumerate(columns[feature.name])])
    return Rows(counts.pop(), columns=out)


def _row_from_object(row: dict, index: dict, names: list, i: int) -> list:
    unknown = [k for k in row if k not in index]
    if unknown:
        raise InvalidInput(f"row {i} has unknown feature(s) {', '.join(map(repr, unknown[:5]))}; expected {', '.join(names)}")
    missing = [name for name in names if name not in row]
    if missing:
        raise InvalidInput(f"row {i} is missing feature(s) {', '.join(map(repr, missing))} "
                           "(send null for a missing value where the model takes one)")
    return [row[name] for name in names]


def _missing(feature, i: int, j: int):
    if feature.nullable:
        return math.nan
    raise InvalidInput(f"{_where(i, j, feature.name)} is missing (null or NaN), and this model cannot take a "
                       "missing value for it")


def _value(feature, value, i: int, j: int):
    """The value as the column will hold it, or InvalidInput saying what the feature takes."""
    kind = feature.kind
    if value is None or (type(value) is float and value != value):
        return _missing(feature, i, j)
    if kind == "string":
        if type(value) is not str:
            raise InvalidInput(f"{_where(i, j, feature.name)} must be a string, got {describe(value)}")
    elif kind == "boolean":
        if type(value) is not bool:
            raise InvalidInput(f"{_where(i, j, feature.name)} must be true or false, got {describe(value)}")
    elif type(value) is bool and kind == "number" and feature.kind_source == "default":
        value = float(value)  # a column passed through untouched: a ColumnTransformer reads a bool as 1/0
    elif type(value) not in _NUMBER:
        raise InvalidInput(f"{_where(i, j, feature.name)} must be {_KIND_NOUN[kind]}, got {describe(value)}")
    else:
        value = _number(feature, value, i, j)
    if feature.unknown == "reject" and feature.categories is not None and value not in feature.categories:
        raise InvalidInput(f"{_where(i, j, feature.name)} is {value!r}, a category the model does not know; "
                           f"known: {_categories(feature.categories)}")
    return value


def _number(feature, value, i: int, j: int):
    if feature.kind == "integer":
        if type(value) is float:
            if not value.is_integer():
                raise InvalidInput(f"{_where(i, j, feature.name)} must be an integer, got {value!r}")
            value = int(value)
        if not INT64_RANGE[0] <= value <= INT64_RANGE[1]:
            raise InvalidInput(f"{_where(i, j, feature.name)} is outside the 64-bit integer range")
        return value
    try:
        value = float(value)
    except OverflowError:
        raise InvalidInput(f"{_where(i, j, feature.name)} is too large to be a 64-bit float") from None
    if math.isinf(value):
        raise InvalidInput(f"{_where(i, j, feature.name)} is infinite; values must be finite")
    if abs(value) > FLOAT32_MAX:
        raise InvalidInput(f"{_where(i, j, feature.name)} is larger in magnitude than {FLOAT32_MAX:.7g}, "
                           "the largest value accepted")
    return value


def _categories(categories) -> str:
    shown = ", ".join(repr(c) for c in categories[:_SHOWN_CATEGORIES])
    more = len(categories) - _SHOWN_CATEGORIES
    return shown + (f" and {more} more (GET / lists them all)" if more > 0 else "")


def _array(feature, values: list):
    from model.rows import column  # numpy comes with it: keep it out of gunicorn's master

    return column(feature, values)


def _matrix(schema, instances: list) -> Rows:
    """The fast path for numeric models: rows straight into a float64 matrix, then checked as a whole."""
    names = schema.names
    n = len(names)
    index = None
    rows = []
    for i, row in enumerate(instances):
        if isinstance(row, dict):
            index = index or {name: j for j, name in enumerate(names)}
            row = _row_from_object(row, index, names, i)
        elif not isinstance(row, list):
            raise InvalidInput(f"row {i} must be an array of {n} numbers or an object keyed by feature name, "
                               f"got {describe(row)}")
        elif len(row) != n:
            raise InvalidInput(f"row {i} has {len(row)} values; the model expects {n} features ({', '.join(names)})")
        for j, value in enumerate(row):
            if type(value) not in _NUMBER:
                row = _slow_value(schema.features[j], row, i, j)
        rows.append(row)
    import numpy as np

    try:
        matrix = np.array(rows, dtype=np.float64)
    except OverflowError:
        raise InvalidInput("a value is too large to be a 64-bit float") from None
    _check_matrix(schema, matrix)
    return Rows(len(rows), matrix=matrix)


def _slow_value(feature, row: list, i: int, j: int) -> list:
    """The row with value j replaced by what the feature takes (null -> NaN, a passed-through bool -> 1/0)."""
    value = row[j]
    if value is None:
        replacement = _missing(feature, i, j)
    elif type(value) is bool and feature.kind_source == "default":
        replacement = float(value)
    else:
        raise InvalidInput(f"{_where(i, j, feature.name)} must be {_KIND_NOUN[feature.kind]}, got {describe(value)}")
    return [*row[:j], replacement, *row[j + 1:]]


def _check_matrix(schema, matrix) -> None:
    import numpy as np

    features = schema.features
    if not np.isfinite(matrix).all():
        infinite = np.isinf(matrix)
        if infinite.any():
            i, j = (int(k[0]) for k in np.nonzero(infinite))
            raise InvalidInput(f"{_where(i, j, features[j].name)} is infinite (or too large for a 64-bit float); "
                               "values must be finite")
        refused = np.isnan(matrix) & ~np.array([f.nullable for f in features])
        if refused.any():
            i, j = (int(k[0]) for k in np.nonzero(refused))
            _missing(features[j], i, j)
    # Beyond float32's range, tree models (which compute in float32) see infinity and scalers overflow
    # float64, and scikit-learn raises mid-prediction; no real feature is that large.
    too_large = np.abs(matrix) > FLOAT32_MAX  # NaN compares False
    if too_large.any():
        i, j = (int(k[0]) for k in np.nonzero(too_large))
        raise InvalidInput(f"{_where(i, j, features[j].name)} is larger in magnitude than {FLOAT32_MAX:.7g}, "
                           "the largest value accepted")
    integers = [j for j, f in enumerate(features) if f.kind == "integer"]
    if integers:
        part = matrix[:, integers]
        fractional = (part != np.floor(part)) & ~np.isnan(part)
        if fractional.any():
            i, k = (int(x[0]) for x in np.nonzero(fractional))
            raise InvalidInput(f"{_where(i, integers[k], features[integers[k]].name)} must be an integer, "
                               f"got {float(matrix[i, integers[k]])!r}")


def _text(schema, instances: list) -> Rows:
    """One string per row: a plain string, a one-value array, or an object with the one feature's name."""
    name = schema.names[0]
    texts = []
    for i, row in enumerate(instances):
        if isinstance(row, list) and len(row) == 1:
            row = row[0]
        elif isinstance(row, dict) and list(row) == [name]:
            row = row[name]
        if type(row) is not str:
            raise InvalidInput(f'row {i} must be a string (the text), a one-string array, or {{"{name}": "..."}}; '
                               f"got {describe(row)}")
        texts.append(row)
    import numpy as np

    column = np.empty(len(texts), dtype=object)
    column[:] = texts
    return Rows(len(texts), columns={name: column})


def from_matrix(schema, matrix) -> Rows:
    """A float64 matrix read in bulk elsewhere (batch scoring's fast path), checked as `_matrix` checks its own.

    Only for "matrix" models: the caller has already made every value a float; what is left to check is
    the same as for a request: finite, missing only where the feature allows it, within float32's range,
    whole where the feature is an integer.
    """
    if schema.layout != "matrix" or matrix.ndim != 2 or matrix.shape[1] != len(schema.features):
        raise ValueError(f"from_matrix takes a [rows, {len(schema.features)}] matrix for a matrix-layout model")
    _check_matrix(schema, matrix)
    return Rows(len(matrix), matrix=matrix)

"""Turning request bodies into a validated float matrix, before the model sees anything.

numpy is imported on first use, in the server's worker: gunicorn's master imports this module too,
and a copy of numpy there would only take memory.

Every problem raises an HttpError subclass whose message says what was wrong and what was expected.
"""

import json

from service.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

_NUMBER = (int, float)
_FLOAT32_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max


def check_content_type(content_type: str | None) -> None:
    """A missing Content-Type is read as JSON (Triton's client sends none); anything else must be JSON."""
    if not content_type:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("application/json", "text/json") or media.endswith("+json"):
        return
    raise UnsupportedMediaType(f"Content-Type must be application/json, got {media!r} "
                               "(with curl, add -H 'Content-Type: application/json')")


async def read_body(receive, content_length: int | None, limit: int) -> bytes:
    """Reads the body with `await receive()` (b"" at its end); refuses one over `limit` before reading it whole."""
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(limit)
    chunks, size = [], 0
    while True:
        try:
            chunk = await receive()
        except OSError:  # the client went away mid-body: nobody is left to answer, but say so in the log
            raise BadRequest("request body ended before it was complete", {"Connection": "close"}) from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise BadRequest(f"malformed JSON: key {key!r} appears twice in one object")
        obj[key] = value
    return obj


def parse_json(body: bytes):
    if not body.strip():
        raise BadRequest("request body is empty; send a JSON object such as {\"instances\": [[...]]}")
    try:
        return json.loads(body, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise BadRequest("request body is not valid UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise BadRequest(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None
    except ValueError:  # Python refuses integers of more than 4300 digits (sys.int_info)
        raise BadRequest("malformed JSON: a number has too many digits") from None


_JSON_TYPES = {bool: "boolean", str: "string", list: "array", dict: "object"}


def _describe(value) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def to_matrix(instances, features: list[str], max_rows: int, allow_nan: bool, what: str = "instances"):
    """Rows given as arrays of numbers or objects keyed by feature name -> float64 matrix."""
    if not isinstance(instances, list):
        raise BadRequest(f'"{what}" must be an array of rows, got {_describe(instances)}')
    if not instances:
        raise BadRequest(f'"{what}" is empty; send at least one row')
    if len(instances) > max_rows:
        raise BadRequest(f'"{what}" has {len(instances)} rows, more than the limit of {max_rows} (MAX_ROWS)')
    n = len(features)
    index = None
    rows = []
    for i, row in enumerate(instances):
        if isinstance(row, dict):
            index = index or {name: j for j, name in enumerate(features)}
            row = _row_from_object(row, index, features, i)
        elif not isinstance(row, list):
            raise BadRequest(f"row {i} must be an array of {n} numbers or an object keyed by feature name, got {_describe(row)}")
        elif len(row) != n:
            raise BadRequest(f"row {i} has {len(row)} values; the model expects {n} features ({', '.join(features)})")
        for j, value in enumerate(row):
            if type(value) not in _NUMBER:
                raise BadRequest(f"row {i}, feature {j} ({features[j]}) must be a number, got {_describe(value)}")
        rows.append(row)
    try:
        import numpy as np

        matrix = np.array(rows, dtype=np.float64)
    except OverflowError:
        raise BadRequest("a value is too large to be a 64-bit float") from None
    check_finite(matrix, allow_nan)
    return matrix


def _row_from_object(row: dict, index: dict, features: list[str], i: int) -> list:
    unknown = [k for k in row if k not in index]
    if unknown:
        raise BadRequest(f"row {i} has unknown feature(s) {', '.join(map(repr, unknown[:5]))}; expected {', '.join(features)}")
    missing = [f for f in features if f not in row]
    if missing:
        raise BadRequest(f"row {i} is missing feature(s) {', '.join(map(repr, missing))}")
    return [row[f] for f in features]


def check_finite(matrix, allow_nan: bool) -> None:
    import numpy as np

    if np.isfinite(matrix).all():
        _check_magnitude(matrix)
        return
    if np.isinf(matrix).any():
        i, j = (int(k[0]) for k in np.nonzero(np.isinf(matrix)))
        raise BadRequest(f"row {i}, feature {j} is infinite (or too large for a 64-bit float); values must be finite")
    if not allow_nan:
        i, j = (int(k[0]) for k in np.nonzero(np.isnan(matrix)))
        raise BadRequest(f"row {i}, feature {j} is NaN, and this model cannot take missing values")
    _check_magnitude(matrix)


def _check_magnitude(matrix) -> None:
    import numpy as np

    # Beyond float32's range, tree models (which compute in float32) see infinity and scalers overflow
    # float64, and scikit-learn raises mid-prediction; no real feature is that large.
    too_large = np.abs(matrix) > _FLOAT32_MAX  # NaN compares False
    if too_large.any():
        i, j = (int(k[0]) for k in np.nonzero(too_large))
        raise BadRequest(f"row {i}, feature {j} is larger in magnitude than {_FLOAT32_MAX:.7g}, the largest value accepted")


def flag(params, name: str) -> bool:
    """A boolean request parameter, absent meaning false."""
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f'parameter "{name}" must be true or false, got {_describe(value)}')
    return value

"""What a format reader hands the scorer: a batch's rows as a request's "instances" would carry them
(or, on the fast path, as one float matrix), each row's place in the shard, and the text each row is
echoed as in the output ("instance"); plus what both readers share.

The readers: `batch.json_lines` and `batch.csv_rows`. Numeric models take a fast path there: a batch
whose every line is a plain row of numbers is parsed at once by numpy's C reader, which rounds exactly
as Python's float() does, into one matrix that the function's matrix check then validates. A batch
the fast path does not take whole goes the general way, line by line, with the same outcome.
"""

import dataclasses
import io
import json
import math

from batch.lines import Lines

# A JSON number, possessive throughout so a long batch is matched without backtracking.
JSON_NUMBER = rb"-?+(?>0|[1-9][0-9]*+)(?>\.[0-9]++)?+(?>[eE][-+]?+[0-9]++)?+"


@dataclasses.dataclass
class Parsed:
    source: Lines
    positions: list[int]  # each row's line index in the shard (blank lines hold no row)
    echoes: list[bytes]  # each row's "instance" as JSON text
    instances: list | None = None  # the rows, in any shape `inference.rows.from_instances` takes
    matrix: object = None  # fast path: the rows as one float matrix, in the schema's feature order
    errors: dict = dataclasses.field(default_factory=dict)  # row -> message, for rows that could not be read


def text_json(data: bytes) -> bytes:
    """Bytes that are not a row, echoed as a JSON string."""
    return json.dumps(data.decode("utf-8", "replace")).encode()


def finite(value):
    """The value with NaN as null and infinities as strings, so it can be written as strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if value != value else str(value)
    if isinstance(value, list):
        return [finite(v) for v in value]
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    return value


def matrix_text(matrix) -> list[bytes]:
    """Each row of a float matrix as the inside of a JSON array ("5.1, 3.5"); NaN as null."""
    text = json.dumps(matrix.tolist()).replace("NaN", "null")
    return [row.encode() for row in text[2:-2].split("], [")] if len(matrix) else []


def loadtxt(data: bytes, columns: int):
    """The lines as a float64 matrix of `columns` columns, or None if numpy's reader does not take them all."""
    import numpy as np

    try:
        matrix = np.loadtxt(io.BytesIO(data), delimiter=",", comments=None, quotechar=None, dtype=np.float64,
                            ndmin=2, encoding="utf-8")
    except ValueError:
        return None
    return matrix if matrix.shape[1] == columns else None

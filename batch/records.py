"""Turning a batch of lines into rows as a request's "instances" would carry them, and into the text
each row is echoed as (the output's "instance").

JSON lines: each line is one row in any shape the function takes (an array in feature order, an object
keyed by feature name, a string for a text model), read by the function's own JSON reader (duplicate
keys refused) and echoed as it was written. A line that is not JSON becomes an error line.

CSV: the header names the model's features, in any order. Each cell is converted to its feature's
kind: numbers and integers as Python reads them, booleans from true/false or 1/0 (any case), strings
as they are, an empty cell as a missing value. A cell that does not convert stays the text it is, so
the function's validation refuses the row with its usual message (row, feature, what it takes). The
row is echoed as Vertex AI echoes a CSV row: an array of its values in the file's column order, here
the converted ones.

Numeric models take a fast path: a batch whose every line is a plain row of numbers (a flat JSON array
of JSON numbers, or CSV cells numpy reads as numbers) is parsed at once by numpy's C reader, which
rounds exactly as Python's float() does, into one matrix, checked by the function's matrix check. A
batch the fast path does not take whole goes the general way, line by line, with the same outcome.
"""

import csv
import dataclasses
import io
import json
import math
import re

from batch.errors import BatchError
from batch.lines import Lines
from service.errors import HttpError
from service.parsing import parse_json

_JSON_NUMBER = rb"-?+(?>0|[1-9][0-9]*+)(?>\.[0-9]++)?+(?>[eE][-+]?+[0-9]++)?+"
_TRUE, _FALSE = ("true", "1"), ("false", "0")


@dataclasses.dataclass
class Parsed:
    source: Lines
    positions: list[int]  # each row's line index in the shard (blank lines hold no row)
    echoes: list[bytes]  # each row's "instance" as JSON text
    instances: list | None = None  # the rows, in any shape `inference.rows.from_instances` takes
    matrix: object = None  # fast path: the rows as one float matrix, in the schema's feature order
    errors: dict = dataclasses.field(default_factory=dict)  # row -> message, for rows that could not be read


def _text(data: bytes) -> bytes:
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


def _matrix_text(matrix) -> list[bytes]:
    """Each row of a float matrix as the inside of a JSON array ("5.1, 3.5"); NaN as null."""
    text = json.dumps(matrix.tolist()).replace("NaN", "null")
    return [row.encode() for row in text[2:-2].split("], [")] if len(matrix) else []


def _loadtxt(data: bytes, columns: int):
    """The rows as a float64 matrix of `columns` columns, or None if numpy's reader does not take them all."""
    import numpy as np

    try:
        matrix = np.loadtxt(io.BytesIO(data), delimiter=",", comments=None, quotechar=None, dtype=np.float64,
                            ndmin=2, encoding="utf-8")
    except ValueError:
        return None
    return matrix if matrix.shape[1] == columns else None


class JsonLines:
    def __init__(self, schema):
        self._schema = schema
        numbers = len(schema.names) - 1
        row = rb"\[[ \t]*+" + _JSON_NUMBER + rb"(?:[ \t]*+,[ \t]*+" + _JSON_NUMBER + rb"){%d}[ \t]*+\]" % numbers
        self._plain_rows = re.compile(rb"(?:" + row + rb"\r?\n)*+" + row + rb"\r?\n?") if schema.layout == "matrix" else None

    def parse(self, source: Lines, fast: bool = True) -> Parsed:
        if fast and self._plain_rows is not None:
            parsed = self._parse_numbers(source)
            if parsed is not None:
                return parsed
        positions, echoes, instances, errors = [], [], [], {}
        for i, raw in enumerate(source.lines):
            line = raw.strip()
            if not line:
                continue
            try:
                value = parse_json(line)
                echo = line if b"NaN" not in line and b"Infinity" not in line else json.dumps(finite(value)).encode()
            except HttpError as e:
                errors[len(instances)] = f"row 0 is not a JSON row: {e.message}"
                value, echo = None, _text(line)
            positions.append(source.first + i)
            echoes.append(echo)
            instances.append(value)
        return Parsed(source, positions, echoes, instances, errors=errors)

    def _parse_numbers(self, source: Lines) -> Parsed | None:
        data = b"\n".join(source.lines)
        if not data or self._plain_rows.fullmatch(data) is None:
            return None  # some line is blank or not a flat array of JSON numbers
        matrix = _loadtxt(data.translate(None, b"[]"), len(self._schema.names))
        if matrix is None or len(matrix) != len(source.lines):
            return None
        # Each line is plain JSON already, echoed as written (without a \r from a Windows line end).
        echoes = [line.rstrip(b"\r") for line in source.lines] if b"\r" in data else source.lines
        return Parsed(source, list(range(source.first, source.first + len(source.lines))), echoes, matrix=matrix)


class Csv:
    def __init__(self, schema, header_line: bytes, uri: str):
        self._schema = schema
        try:
            self._header = next(csv.reader([header_line.decode("utf-8-sig").rstrip("\r\n")]))
        except (UnicodeDecodeError, StopIteration):
            raise BatchError(f"{uri}: the first line must be a CSV header (UTF-8) naming the model's features") from None
        header, names = self._header, schema.names
        missing = [n for n in names if n not in header]
        unknown = [h for h in header if h not in names]
        if missing or unknown or len(set(header)) != len(header):
            problems = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + (
                [f"unknown {', '.join(map(repr, unknown[:5]))}"] if unknown else []) + (
                ["a column named twice"] if len(set(header)) != len(header) else [])
            raise BatchError(f"{uri}: the CSV header must name the model's features ({', '.join(names)}) in any "
                             f"order; {'; '.join(problems)}")
        self._column = [header.index(n) for n in names]  # schema order -> file column
        kinds = {f.name: f.kind for f in schema.features}
        self._kinds = [kinds[h] for h in header]  # file order
        row = _JSON_NUMBER + rb"(?:," + _JSON_NUMBER + rb"){%d}" % (len(header) - 1)
        self._json_cells = re.compile(rb"(?:" + row + rb"\r?\n)*+" + row + rb"\r?")

    def parse(self, source: Lines, fast: bool = True) -> Parsed:
        if fast and self._schema.layout == "matrix":
            parsed = self._parse_numbers(source)
            if parsed is not None:
                return parsed
        positions, echoes, instances, errors = [], [], [], {}
        for i, raw in enumerate(source.lines):
            if not raw.strip():
                continue
            positions.append(source.first + i)
            try:
                cells = next(csv.reader([raw.decode("utf-8").rstrip("\r")]))
            except (UnicodeDecodeError, csv.Error) as e:
                cells, problem = None, "is not UTF-8 text" if isinstance(e, UnicodeDecodeError) else f"is not CSV: {e}"
            else:
                problem = f"has {len(cells)} values; the header names {len(self._header)} columns"
            if cells is None or len(cells) != len(self._header):
                errors[len(instances)] = f"row 0 {problem}"
                echoes.append(_text(raw.strip()))
                instances.append(None)
                continue
            values = [_convert(cell, kind) for cell, kind in zip(cells, self._kinds)]
            echoes.append(json.dumps(finite(values)).encode())
            instances.append([values[j] for j in self._column])
        return Parsed(source, positions, echoes, instances, errors=errors)

    def _parse_numbers(self, source: Lines) -> Parsed | None:
        data = b"\n".join(source.lines)
        matrix = _loadtxt(data, len(self._header))
        if matrix is None or len(matrix) != len(source.lines):  # numpy skips blank lines: they show here
            return None
        if self._json_cells.fullmatch(data):  # every cell is a JSON number already: echoed as written
            echoes = [b"[" + line.rstrip(b"\r") + b"]" for line in source.lines]
        else:  # spellings JSON lacks (".5", "+1", "nan"): echoed as Python writes the values
            echoes = [b"[" + row + b"]" for row in _matrix_text(matrix)]
        return Parsed(source, list(range(source.first, source.first + len(source.lines))), echoes,
                      matrix=matrix[:, self._column])


def _convert(cell: str, kind: str):
    """The cell as its feature's kind; an empty cell is missing; one that does not convert stays text."""
    if cell == "":
        return None
    if kind == "string":
        return cell
    if kind == "boolean":
        lowered = cell.strip().lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else cell
    try:
        return int(cell) if kind == "integer" else float(cell)
    except ValueError:
        pass
    try:
        return float(cell)  # "3.0" for an integer feature: the validator decides
    except ValueError:
        return cell

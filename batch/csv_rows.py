"""CSV with a header: the header names the model's features, in any order. Each cell is converted to its
feature's kind: numbers and integers as Python reads them, booleans from true/false or 1/0 (any case),
strings as they are, an empty cell as a missing value. A cell that does not convert stays the text it
is, so the function's validation refuses the row with its usual message (row, feature, what it takes).
A row is echoed as Vertex AI echoes a CSV row: an array of its values in the file's column order, here
the converted ones. On the fast path, every cell of the batch is a number numpy reads; the rows are
echoed from the bytes as written when every cell is a JSON number, else from the values read.
"""

import csv
import json
import re

from batch.errors import BatchError
from batch.lines import Lines
from batch.records import JSON_NUMBER, Parsed, finite, loadtxt, matrix_text, text_json

_TRUE, _FALSE = ("true", "1"), ("false", "0")


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
        features = {f.name: f for f in schema.features}
        self._features = [features[h] for h in header]  # file order
        row = JSON_NUMBER + rb"(?:," + JSON_NUMBER + rb"){%d}" % (len(header) - 1)
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
                echoes.append(text_json(raw.strip()))
                instances.append(None)
                continue
            values = [_convert(cell, feature) for cell, feature in zip(cells, self._features)]
            echoes.append(json.dumps(finite(values)).encode())
            instances.append([values[j] for j in self._column])
        return Parsed(source, positions, echoes, instances, errors=errors)

    def _parse_numbers(self, source: Lines) -> Parsed | None:
        data = b"\n".join(source.lines)
        matrix = loadtxt(data, len(self._header))
        if matrix is None or len(matrix) != len(source.lines):  # numpy skips blank lines: they show here
            return None
        if self._json_cells.fullmatch(data):  # every cell is a JSON number already: echoed as written
            echoes = [b"[" + line.rstrip(b"\r") + b"]" for line in source.lines]
        else:  # spellings JSON lacks (".5", "+1", "nan"): echoed as Python writes the values
            echoes = [b"[" + row + b"]" for row in matrix_text(matrix)]
        return Parsed(source, list(range(source.first, source.first + len(source.lines))), echoes,
                      matrix=matrix[:, self._column])


def _convert(cell: str, feature):
    """The cell as its feature's kind; an empty cell is missing; one that does not convert stays text.
    A number column whose kind nothing in the model tells (passed through untouched) takes true/false
    too, as the function takes JSON booleans there: pandas writes a bool column as True/False."""
    if cell == "":
        return None
    kind = feature.kind
    if kind == "string":
        return cell
    lowered = cell.strip().lower()
    if kind == "boolean":
        return True if lowered in _TRUE else False if lowered in _FALSE else cell
    if kind == "number" and feature.kind_source == "default" and lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(cell) if kind == "integer" else float(cell)
    except ValueError:
        pass
    try:
        return float(cell)  # "3.0" for an integer feature: the validator decides
    except ValueError:
        return cell

"""JSON lines: each line is one row in any shape the function takes (an array in feature order, an
object keyed by feature name, a string for a text model), read by the function's own JSON reader
(duplicate keys refused) and echoed as it was written. A line that is not JSON is an error line.
On the fast path, every line of the batch is a flat array of JSON numbers (checked by one regular
expression over the batch), read by numpy.
"""

import json
import re

from batch.lines import Lines
from batch.records import JSON_NUMBER, Parsed, finite, loadtxt, text_json
from service.errors import HttpError
from service.parsing import parse_json


class JsonLines:
    def __init__(self, schema):
        self._schema = schema
        numbers = len(schema.names) - 1
        row = rb"\[[ \t]*+" + JSON_NUMBER + rb"(?:[ \t]*+,[ \t]*+" + JSON_NUMBER + rb"){%d}[ \t]*+\]" % numbers
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
                value, echo = None, text_json(line)
            positions.append(source.first + i)
            echoes.append(echo)
            instances.append(value)
        return Parsed(source, positions, echoes, instances, errors=errors)

    def _parse_numbers(self, source: Lines) -> Parsed | None:
        data = b"\n".join(source.lines)
        if not data or self._plain_rows.fullmatch(data) is None:
            return None  # some line is blank or not a flat array of JSON numbers
        matrix = loadtxt(data.translate(None, b"[]"), len(self._schema.names))
        if matrix is None or len(matrix) != len(source.lines):
            return None
        # Each line is plain JSON already, echoed as written (without a \r from a Windows line end).
        echoes = [line.rstrip(b"\r") for line in source.lines] if b"\r" in data else source.lines
        return Parsed(source, list(range(source.first, source.first + len(source.lines))), echoes, matrix=matrix)

"""One batch: the function's validation, the model call, and the output lines in Vertex AI's shape.

Rows are validated as a request's rows are (`inference.rows`). When a batch holds bad rows, each row
is checked alone to find them; the good ones are scored together, and each bad one becomes an error
line whose message names its row in the input file. Rows the schema accepted but the model refuses
(an encoder meeting a value it cannot take) are found by halving the batch until each refused row
stands alone. Output lines keep the input's order:
    {"instance": <the row as read>, "prediction": <label or value>}
    {"instance": <the row as read>, "error": "row 12, feature 2 (petal length (cm)) must be a number, got string"}
"""

import dataclasses
import json
import re

from batch.records import Parsed, finite
from inference.errors import InvalidInput
from inference.predictor import predict_now
from inference.rows import Rows, from_instances, from_matrix

_ROW_ZERO = re.compile(r"^row 0\b")


@dataclasses.dataclass
class Prepared:
    parsed: Parsed
    good: list[int]  # the rows to score, by index in the batch
    rows: Rows | None  # those rows, validated
    errors: dict  # row index -> message about "row 0", rewritten with the row's place when written


def prepare(schema, fmt, parsed: Parsed) -> Prepared:
    """The batch's rows validated, with the ones that fail set apart."""
    if parsed.matrix is not None:
        try:
            return Prepared(parsed, list(range(len(parsed.echoes))), from_matrix(schema, parsed.matrix), {})
        except InvalidInput:  # some row is bad: read the batch again line by line, to name each
            parsed = fmt.parse(parsed.source, fast=False)
    errors = dict(parsed.errors)
    candidates = [i for i in range(len(parsed.instances)) if i not in errors]
    if not candidates:
        return Prepared(parsed, [], None, errors)
    instances = parsed.instances
    try:
        return Prepared(parsed, candidates, from_instances(schema, [instances[i] for i in candidates], len(candidates)), errors)
    except InvalidInput:
        pass
    good = []
    for i in candidates:
        try:
            from_instances(schema, [instances[i]], 1)
            good.append(i)
        except InvalidInput as e:
            errors[i] = e.message
    rows = from_instances(schema, [instances[i] for i in good], len(good)) if good else None
    return Prepared(parsed, good, rows, errors)


def predict(model, prepared: Prepared) -> list:
    """A label per good row; a row the model refuses gets None and an error (runs in the model's thread)."""
    if prepared.rows is None:
        return []
    labels = [None] * prepared.rows.count
    _predict_range(model, prepared, 0, prepared.rows.count, labels)
    return labels


def _predict_range(model, prepared: Prepared, start: int, stop: int, labels: list) -> None:
    rows = prepared.rows
    part = rows if (start, stop) == (0, rows.count) else _slice(rows, start, stop)
    try:
        labels[start:stop] = predict_now(model, part)[0]
    except InvalidInput as e:
        if stop - start == 1:
            prepared.errors[prepared.good[start]] = f"row 0: {e.message}"
            return
        middle = (start + stop) // 2
        _predict_range(model, prepared, start, middle, labels)
        _predict_range(model, prepared, middle, stop, labels)


def _slice(rows: Rows, start: int, stop: int) -> Rows:
    if rows.matrix is not None:
        return Rows(stop - start, matrix=rows.matrix[start:stop])
    return Rows(stop - start, columns={name: column[start:stop] for name, column in rows.columns.items()})


def encode(prepared: Prepared, labels: list, row_number) -> tuple[bytes, int]:
    """The batch's output lines and how many are errors; `row_number(line index)` names a row in its file."""
    echoes = prepared.parsed.echoes
    values = _as_json(labels)
    if not prepared.errors:
        return b"".join([b'{"instance":%s,"prediction":%s}\n' % pair for pair in zip(echoes, values)]), 0
    positions, errors, good = prepared.parsed.positions, prepared.errors, set(prepared.good)
    out, scored = [], iter(values)
    for i, echo in enumerate(echoes):
        value = next(scored) if i in good else None
        if i in errors:
            message = _ROW_ZERO.sub(f"row {row_number(positions[i])}", errors[i], count=1)
            out.append(b'{"instance":%s,"error":%s}\n' % (echo, json.dumps(message).encode()))
        else:
            out.append(b'{"instance":%s,"prediction":%s}\n' % (echo, value))
    return b"".join(out), len(errors)


def _as_json(labels: list) -> list[bytes]:
    try:  # a classifier has a few distinct labels: encode each once
        known = {label: json.dumps(finite(label)).encode() for label in set(labels)}
    except TypeError:  # unhashable: one list per row (multi-output models)
        return [json.dumps(finite(label)).encode() for label in labels]
    return [known[label] for label in labels]

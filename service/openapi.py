"""The published HTTP contract: service/openapi.json, with the request rows of the model being served.

The static document describes every route, both error shapes and the limits. Once the model is
loaded, its `Row` schema is replaced by this model's own (feature names in order, each one's type,
`nullable` where it takes a missing value, `enum` for the categories its encoders know), so clients and
fuzzers generate the rows this model takes. The examples become one of the model's own rows.
"""

import copy
import functools
import json
import pathlib

from inference.rows import FLOAT32_MAX, INT64_RANGE
from inference.warmup import example_row

OPENAPI_PATH = pathlib.Path(__file__).with_name("openapi.json")
_TYPES = {"number": "number", "integer": "integer", "string": "string", "boolean": "boolean"}


@functools.cache
def _static() -> dict:
    return json.loads(OPENAPI_PATH.read_text())


_last: tuple = (None, None)  # (model, its document): one model per process, so one entry is enough


def document(model=None) -> dict:
    """The contract; with `model`, its request rows (built once per model: a loaded model never changes)."""
    global _last
    if model is None:
        return _static()
    if _last[0] is not model:
        _last = (model, _model_document(model))
    return _last[1]


def _model_document(model) -> dict:
    doc = copy.deepcopy(_static())
    schemas = doc["components"]["schemas"]
    schemas["Row"] = row_schema(model.schema)
    schemas["Features"] = {"type": "array", "items": {"type": "string"}, "example": model.schema.names,
                           "description": "the model's features, in the order array rows use"}
    example = {"instances": [_json_row(model.schema)]}
    for path in ("/", "/predict"):
        doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["example"] = example
    doc["info"]["x-model"] = {"name": model.name, "version": model.version, "schema": model.schema.to_dict()}
    return doc


def _json_row(schema):
    row = example_row(schema)
    return row if schema.layout == "text" else dict(zip(schema.names, row))


def _value_schema(feature) -> dict:
    out = {"type": _TYPES[feature.kind]}
    if feature.kind == "number" and feature.categories is None:
        out.update(minimum=-FLOAT32_MAX, maximum=FLOAT32_MAX)
    elif feature.kind == "integer" and feature.categories is None:
        out.update(minimum=INT64_RANGE[0], maximum=INT64_RANGE[1])
    if feature.kind == "number" and feature.kind_source == "default":
        out["description"] = "a number (true/false are read as 1/0: nothing told this column's type)"
    if feature.categories is not None:
        out["enum"] = list(feature.categories)
        if feature.unknown == "accept":
            out["description"] = "known categories; the model also answers for others (its encoder ignores them)"
    if feature.nullable:
        out["nullable"] = True
        if "enum" in out:
            out["enum"].append(None)
    return out


def row_schema(schema) -> dict:
    """One row of this model, as an OpenAPI 3.0 schema."""
    if schema.layout == "text":
        text = {"type": "string", "description": "the text to score"}
        return {"description": "One text: a string, a one-string array, or an object with its one feature.",
                "oneOf": [text, {"type": "array", "items": text, "minItems": 1, "maxItems": 1},
                          {"type": "object", "required": [schema.names[0]], "additionalProperties": False,
                           "properties": {schema.names[0]: text}}]}
    values = [_value_schema(f) for f in schema.features]
    n = len(values)
    return {
        "description": f"One row: an object keyed by feature name, or an array of the {n} values in order "
                       f"({', '.join(schema.names)}). null marks a missing value where the model takes one.",
        "oneOf": [
            {"type": "object", "required": schema.names, "additionalProperties": False,
             "properties": dict(zip(schema.names, values))},
            {"type": "array", "minItems": n, "maxItems": n,
             "items": values[0] if len({json.dumps(v, sort_keys=True) for v in values}) == 1 else {"anyOf": _unique(values)}},
        ],
    }


def _unique(values: list) -> list:
    seen, out = set(), []
    for value in values:
        key = json.dumps(value, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out

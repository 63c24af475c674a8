"""Request and response shapes of the three protocols served: plain/Vertex, KServe V1, and V2.

Rows are validated against the model's schema by `inference.rows` (its InvalidInput is answered as a
400 by the router). The V2 (Open Inference Protocol) shapes follow what KServe's, MLServer's and Triton's clients send:
tensors with `name`, `shape`, `datatype` and `data` (flat, row-major, or nested), unknown keys ignored.
"""

from inference import rows
from service.errors import BadRequest
from service.parsing import flag

_NUMERIC = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}
# MLServer's request-level codecs: pandas (one input per column) and numpy (one tensor).
_CONTENT_TYPES = ("pd", "np")
DATATYPES = {"number": "FP64", "integer": "INT64", "string": "BYTES", "boolean": "BOOL"}
OUTPUTS = ("predict", "predict_proba")


def plain_rows(body, model, max_rows: int):
    """(rows, probabilities?) from `{"instances": [...], "parameters": {...}}` or `{"features": ...}` (one row)."""
    if not isinstance(body, dict):
        raise BadRequest('request body must be a JSON object with "instances" (rows) or "features" (one row)')
    if ("instances" in body) == ("features" in body):
        raise BadRequest('request body must have exactly one of "instances" (a list of rows) or "features" (one row)')
    params = _parameters(body)
    if "features" in body and not isinstance(body["features"], (list, dict, str)):
        raise BadRequest('"features" must be an array of values, an object keyed by feature name, or (text models) a string')
    instances = body["instances"] if "instances" in body else [body["features"]]
    return rows.from_instances(model.schema, instances, max_rows), flag(params, "probabilities")


def _parameters(body) -> dict:
    params = body.get("parameters")
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise BadRequest('"parameters" must be an object')
    return params


def plain_response(model, outcome) -> dict:
    body = {"predictions": outcome.labels, "model": {"name": model.name, "version": model.version}}
    if outcome.probabilities is not None:
        body["probabilities"], body["classes"] = outcome.probabilities, model.classes
    return body


def v2_rows(body, model, max_rows: int):
    """(rows, probabilities?, outputs) from a V2 inference request.

    The inputs are one `[rows, features]` tensor (or `[rows]` of strings for a text model), or one
    tensor per feature named as the feature (MLServer's pandas codec, `"content_type": "pd"`).
    """
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise BadRequest('request body must be a JSON object with a non-empty "inputs" array of tensors')
    inputs = body["inputs"]
    for i, tensor in enumerate(inputs):
        _check_tensor(tensor, i)
    params = _parameters(body)
    content_type = params.get("content_type")
    if content_type is not None and content_type not in _CONTENT_TYPES:
        raise BadRequest(f'parameters.content_type {content_type!r} is not supported; use one of {", ".join(_CONTENT_TYPES)}')
    schema = model.schema
    if len(inputs) == 1 and not (len(schema.features) == 1 and inputs[0]["name"] == schema.names[0] != "text"):
        found = rows.from_instances(schema, _rows_of(inputs[0], schema), max_rows, "inputs")
    else:
        columns = {}
        for tensor in inputs:
            if any(d != 1 for d in tensor["shape"][1:]):
                raise BadRequest(f"input {tensor['name']!r} must have shape [rows] or [rows, 1], got {tensor['shape']}")
            if tensor["name"] in columns:
                raise BadRequest(f"input {tensor['name']!r} appears twice")
            feature = _check_datatype(tensor, schema)
            values = _flat(tensor, tensor["shape"][0] if tensor["shape"] else 0)
            columns[tensor["name"]] = values if feature is None or feature.kind == "boolean" else _bools_as_ints(tensor, values)
        found = rows.from_columns(schema, columns, max_rows)
    outputs = _requested_outputs(body)
    return found, "predict_proba" in outputs or flag(params, "probabilities"), outputs


def _rows_of(tensor, schema) -> list:
    """The rows of a single tensor: `[rows, n]` values, or `[rows]` / `[rows, 1]` texts for a text model."""
    n = len(schema.features)
    shape = tensor["shape"]
    if schema.layout == "text":
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise BadRequest(f"input {tensor['name']!r} has shape {shape}; a text model takes [rows] or [rows, 1] strings")
        return _flat(tensor, shape[0])
    if len(shape) == 1 and shape[0] == n:
        shape = [1, n]
    if len(shape) != 2 or shape[1] != n:
        raise BadRequest(f"input {tensor['name']!r} has shape {tensor['shape']}; expected [rows, {n}] or one tensor "
                         f"per feature ({', '.join(schema.names)})")
    values = _flat(tensor, shape[0] * shape[1])
    if not any(f.kind == "boolean" for f in schema.features):
        values = _bools_as_ints(tensor, values)
    return _chunk(values, n)


def _bools_as_ints(tensor, values: list) -> list:
    """A BOOL tensor's true/false as 1/0 for numeric features, as numpy reads a bool array as numbers."""
    return [int(v) if type(v) is bool else v for v in values] if tensor["datatype"] == "BOOL" else values


def _check_datatype(tensor, schema):
    """The feature the tensor feeds (None if no feature has its name), if its datatype fits that feature."""
    feature = next((f for f in schema.features if f.name == tensor["name"]), None)
    if feature is None:
        return None  # from_columns names the unknown input
    datatype = tensor["datatype"]
    fits = datatype == "BYTES" if feature.kind == "string" else (
        datatype == "BOOL" if feature.kind == "boolean" else datatype in _NUMERIC)
    if not fits:
        raise BadRequest(f"input {tensor['name']!r} has datatype {datatype}, but feature {feature.name} takes "
                         f"{feature.kind} values (datatype {DATATYPES[feature.kind]})")
    return feature


def _check_tensor(tensor, i: int) -> None:
    if not isinstance(tensor, dict):
        raise BadRequest(f"inputs[{i}] must be an object with name, shape, datatype and data")
    missing = [k for k in ("name", "shape", "datatype", "data") if k not in tensor]
    if missing:
        raise BadRequest(f"inputs[{i}] is missing {', '.join(missing)}")
    if not isinstance(tensor["name"], str):
        raise BadRequest(f"inputs[{i}].name must be a string")
    shape = tensor["shape"]
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequest(f"inputs[{i}].shape must be an array of non-negative integers")
    if not isinstance(tensor["datatype"], str) or tensor["datatype"] not in _NUMERIC | {"BYTES"}:
        raise BadRequest(f"inputs[{i}].datatype {tensor['datatype']!r} is not supported; use BYTES, BOOL or a numeric "
                         "type such as INT64 or FP64")
    if isinstance(tensor.get("parameters"), dict) and tensor["parameters"].get("binary_data_size") is not None:
        raise BadRequest(f"inputs[{i}] uses the binary data extension, which is not supported; send the data as JSON")


def _flat(tensor, expected: int) -> list:
    data = tensor["data"]
    if not isinstance(data, list):
        raise BadRequest(f"input {tensor['name']!r}: data must be an array")
    while data and isinstance(data[0], list):  # nested, row-major: flatten one level at a time
        if not all(isinstance(d, list) for d in data):
            raise BadRequest(f"input {tensor['name']!r}: data mixes arrays and values")
        data = [v for d in data for v in d]
    if len(data) != expected:
        raise BadRequest(f"input {tensor['name']!r} has {len(data)} values but its shape {tensor['shape']} needs {expected}")
    return data


def _chunk(values: list, width: int) -> list:
    return [values[k:k + width] for k in range(0, len(values), width)]


def _requested_outputs(body) -> tuple:
    requested = body.get("outputs")
    if requested is None:
        return ("predict",)
    if not isinstance(requested, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in requested):
        raise BadRequest('"outputs" must be an array of objects with a "name"')
    names = tuple(o["name"] for o in requested)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise BadRequest(f"unknown output(s) {', '.join(unknown)}; this model has {', '.join(OUTPUTS)}")
    return names or ("predict",)


def datatype_of(values) -> str:
    kinds = {type(v) for v in values}
    if kinds <= {bool}:
        return "BOOL"
    if kinds <= {int}:
        return "INT64"
    if kinds <= {int, float}:
        return "FP64"
    return "BYTES"


def v2_response(model, outcome, outputs, request_body) -> dict:
    labels, probs = outcome.labels, outcome.probabilities
    body = {"model_name": model.name, "model_version": model.version, "outputs": []}
    if isinstance(request_body.get("id"), str):
        body["id"] = request_body["id"]
    for name in outputs:
        if name == "predict":
            values = [str(v) for v in labels] if datatype_of(labels) == "BYTES" else labels
            body["outputs"].append({"name": name, "shape": [len(labels)], "datatype": datatype_of(labels), "data": values})
        else:
            width = len(probs[0]) if probs else 0
            body["outputs"].append({"name": name, "shape": [len(probs), width], "datatype": "FP64",
                                    "data": [p for row in probs for p in row]})
    return body


def v2_metadata(model) -> dict:
    """One input per feature with its datatype; the whole schema (nullable, categories) is in GET /."""
    label_type = datatype_of(model.classes) if model.classes else "FP64"
    outputs = [{"name": "predict", "datatype": label_type, "shape": [-1]}]
    if model.has_proba and model.classes:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(model.classes)]})
    schema = model.schema
    inputs = [{"name": f.name, "datatype": DATATYPES[f.kind], "shape": [-1, 1]} for f in schema.features]
    return {"name": model.name, "versions": [model.version], "platform": "sklearn", "inputs": inputs,
            "outputs": outputs, "parameters": {"content_type": "pd" if schema.layout == "frame" else "np"}}

"""Request and response shapes of the three protocols served: plain/Vertex, KServe V1, and V2.

The V2 (Open Inference Protocol) shapes follow what KServe's, MLServer's and Triton's clients send:
tensors with `name`, `shape`, `datatype` and `data` (flat, row-major, or nested), unknown keys ignored.
"""

from service.errors import BadRequest
from service.parsing import flag, to_matrix

_NUMERIC = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}
OUTPUTS = ("predict", "predict_proba")


def plain_rows(body, model, max_rows: int):
    """(rows, probabilities?) from `{"instances": [...], "parameters": {...}}` or `{"features": [...]}`."""
    if not isinstance(body, dict):
        raise BadRequest('request body must be a JSON object with "instances" (rows) or "features" (one row)')
    if ("instances" in body) == ("features" in body):
        raise BadRequest('request body must have exactly one of "instances" (a list of rows) or "features" (one row)')
    params = body.get("parameters")
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise BadRequest('"parameters" must be an object')
    rows = body["instances"] if "instances" in body else [body["features"]]
    if "features" in body and not isinstance(body["features"], (list, dict)):
        raise BadRequest('"features" must be an array of numbers or an object keyed by feature name')
    return to_matrix(rows, model.features, max_rows, model.allow_nan), flag(params, "probabilities")


def plain_response(model, labels, probs) -> dict:
    body = {"predictions": labels, "model": {"name": model.name, "version": model.version}}
    if probs is not None:
        body["probabilities"], body["classes"] = probs, model.classes
    return body


def v2_rows(body, model, max_rows: int):
    """(rows, probabilities?, echo) from a V2 inference request."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise BadRequest('request body must be a JSON object with a non-empty "inputs" array of tensors')
    inputs = body["inputs"]
    for i, tensor in enumerate(inputs):
        _check_tensor(tensor, i)
    n = len(model.features)
    if len(inputs) == 1:
        tensor = inputs[0]
        shape = tensor["shape"]
        if len(shape) == 1 and shape[0] == n:
            shape = [1, n]
        if len(shape) != 2 or shape[1] != n:
            raise BadRequest(f"input {tensor['name']!r} has shape {tensor['shape']}; expected [rows, {n}]")
        rows = _chunk(_flat(tensor, shape[0] * shape[1]), n)
    else:
        names = [t["name"] for t in inputs]
        if sorted(names) != sorted(model.features):
            raise BadRequest(f"inputs must be one [rows, {n}] tensor or one tensor per feature named "
                             f"{', '.join(model.features)}; got {', '.join(names)}")
        columns = {}
        for tensor in inputs:
            count = tensor["shape"][0] if tensor["shape"] else 0
            if any(d != 1 for d in tensor["shape"][1:]):
                raise BadRequest(f"input {tensor['name']!r} must have shape [rows] or [rows, 1], got {tensor['shape']}")
            columns[tensor["name"]] = _flat(tensor, count)
        counts = {len(c) for c in columns.values()}
        if len(counts) != 1:
            raise BadRequest("per-feature inputs must all have the same number of rows")
        rows = [list(r) for r in zip(*(columns[f] for f in model.features))]
    outputs = _requested_outputs(body)
    params = body.get("parameters")
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise BadRequest('"parameters" must be an object')
    proba = "predict_proba" in outputs or flag(params, "probabilities")
    return to_matrix(rows, model.features, max_rows, model.allow_nan, what="inputs"), proba, outputs


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
    if not isinstance(tensor["datatype"], str) or tensor["datatype"] not in _NUMERIC:
        raise BadRequest(f"inputs[{i}].datatype {tensor['datatype']!r} is not supported; use a numeric type such as FP32 or FP64")


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
    if tensor["datatype"] == "BOOL":
        data = [int(v) if type(v) is bool else v for v in data]
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


def v2_response(model, labels, probs, outputs, request_body) -> dict:
    data = {"predict": labels, "predict_proba": probs}
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
                                    "data": [p for row in data[name] for p in row]})
    return body


def v2_metadata(model) -> dict:
    label_type = datatype_of(model.classes) if model.classes else "FP64"
    outputs = [{"name": "predict", "datatype": label_type, "shape": [-1]}]
    if model.has_proba and model.classes:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(model.classes)]})
    return {"name": model.name, "versions": [model.version], "platform": "sklearn",
            "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, len(model.features)],
                        "parameters": {"features": model.features}}],
            "outputs": outputs}

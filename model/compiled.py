"""An opt-in compiled inference path: the model converted to ONNX and run by ONNX Runtime.

Serving through ONNX Runtime needs neither scikit-learn, SciPy nor pandas in the serving process,
which removes most of a cold start, and it answers single rows in tens of microseconds. It is chosen
per model when the model is built (`python -m model train --runtime onnx`, `python -m model package
--runtime onnx`), and only after the converted model gave the same labels as scikit-learn on every
verification row; scikit-learn stays the default. Tree ensembles compare 32-bit thresholds in ONNX,
so probabilities can differ slightly (each tree of a hundred that goes the other way near a threshold
moves a probability by 0.01); up to PROBABILITY_TOLERANCE is accepted and the largest difference seen
is recorded in the manifest. Regression outputs are compared within VALUE_TOLERANCE (relative).

A matrix model takes one 2-D input. A DataFrame model takes one input per column, in the schema's
order (numbers as float, integers as int64, booleans as bool, strings as string), and a text model
one string column; `OnnxEstimator` casts the columns it is given to those types.
"""

import pathlib
import re

import numpy as np

from model import manifest as manifests
from model.errors import ModelIntegrityError, ModelUnreadable

ONNX_NAME = "model.onnx"
PROBABILITY_TOLERANCE = 0.05
VALUE_TOLERANCE = 1e-4
# ONNX Runtime lower-cases text in this locale; skl2onnx's default (en_US.UTF-8) is missing from
# slim images, and C.UTF-8 ships with glibc.
TEXT_LOCALE = "C.UTF-8"

_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
                "tensor(bool)": np.bool_, "tensor(string)": object}


class CompileError(Exception):
    """The model cannot be converted, or the converted model does not behave like the scikit-learn one."""


def compile_onnx(estimator, out: pathlib.Path, rows, schema=None) -> dict:
    """Converts, verifies on `rows`, writes model.onnx; returns the manifest's `compiled` entry.

    `rows` is what the estimator takes: a 2-D array (matrix layout, or no schema), a DataFrame with the
    schema's columns (frame), or a sequence of strings (text).
    """
    import onnxruntime

    path = out / ONNX_NAME
    path.write_bytes(_convert(estimator, rows, schema))
    try:
        compiled = OnnxEstimator(path, getattr(estimator, "classes_", None), schema)
        verified = _verify(estimator, compiled, rows, schema)
    except BaseException:
        path.unlink()
        raise
    return {"file": ONNX_NAME, "format": "onnx", "sha256": manifests.sha256_of(path), "size": path.stat().st_size,
            "onnxruntime": onnxruntime.__version__, "verified": verified}


def inputs_for(rows, schema) -> object:
    """What OnnxEstimator takes for `rows` (see compile_onnx): the matrix, or 1-D columns by feature name."""
    layout = schema.layout if schema is not None else "matrix"
    if layout == "matrix":
        return np.asarray(rows, dtype=np.float64)
    if layout == "text":
        return {schema.names[0]: np.asarray(list(rows), dtype=object)}
    kinds = {"number": np.float64, "integer": np.int64, "boolean": np.bool_, "string": object}
    return {f.name: np.asarray(rows[f.name].to_numpy(), dtype=kinds[f.kind]) for f in schema.features}


def _convert(estimator, rows, schema) -> bytes:
    """The ONNX bytes of the first input typing that skl2onnx converts and ONNX Runtime loads."""
    import onnxruntime
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import BooleanTensorType, DoubleTensorType, FloatTensorType, Int64TensorType, StringTensorType

    layout = schema.layout if schema is not None else "matrix"
    options = _options(estimator)
    failure = None
    # Doubles keep scikit-learn's precision, but several ONNX-ML operators (Imputer, tree ensembles)
    # take floats only; try both.
    for number_type in (DoubleTensorType, FloatTensorType):
        if layout == "matrix":
            initial = [("X", number_type([None, np.asarray(rows).shape[1]]))]
        elif layout == "text":
            initial = [(schema.names[0], StringTensorType([None, 1]))]
        else:
            types = {"number": number_type, "integer": Int64TensorType, "boolean": BooleanTensorType,
                     "string": StringTensorType}
            # A ColumnTransformer that selects by name finds its columns by these input names.
            initial = [(f.name, types[f.kind]([None, 1])) for f in schema.features]
        try:
            onx = convert_sklearn(estimator, initial_types=initial, options=options).SerializeToString()
        except Exception as e:
            raise CompileError(_unsupported(e)) from None
        try:
            onnxruntime.InferenceSession(onx, providers=["CPUExecutionProvider"])
            return onx
        except Exception as e:
            failure = e
    raise CompileError(f"ONNX Runtime cannot run the converted model: {_first_line(failure)}")


def _options(estimator) -> dict:
    """skl2onnx options by sub-estimator: plain probability arrays, and a text locale that exists."""
    from sklearn.base import is_classifier

    options = {}
    for part in _parts(estimator):
        if is_classifier(part):
            options[id(part)] = {"zipmap": False}
        elif type(part).__name__ in ("CountVectorizer", "TfidfVectorizer"):
            options[id(part)] = {"locale": TEXT_LOCALE}
    return options


def _parts(estimator):
    """The estimator and every estimator inside it (pipeline steps, column transformers, unions)."""
    yield estimator
    children = [step for _, step in getattr(estimator, "steps", [])]
    children += [t for _, t, _ in getattr(estimator, "transformers_", [])]
    children += [t for _, t in getattr(estimator, "transformer_list", [])]
    for child in children:
        if not isinstance(child, str) and child is not None:
            yield from _parts(child)


def _unsupported(error: Exception) -> str:
    found = re.search(r"for type '<class '([^']+)'>'", str(error))
    if found:
        return f"skl2onnx has no converter for {found.group(1)}"
    return f"skl2onnx cannot convert this model: {type(error).__name__}: {_first_line(error)}"


def _first_line(error) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def _verify(estimator, compiled: "OnnxEstimator", rows, schema) -> dict:
    import warnings

    feeds = inputs_for(rows, schema)
    n = len(next(iter(feeds.values()))) if isinstance(feeds, dict) else len(feeds)
    with warnings.catch_warnings():
        # A model fitted on a DataFrame warns about the plain matrix it is verified on; nothing is wrong.
        warnings.simplefilter("ignore", UserWarning)
        expected = estimator.predict(rows)
        expected_proba = estimator.predict_proba(rows) if hasattr(estimator, "predict_proba") else None
    got = compiled.predict(feeds)
    verified = {"held_out_rows": n}
    if getattr(estimator, "classes_", None) is not None:
        differing = int(np.sum(got != expected))
        if differing:
            raise CompileError(f"ONNX gives other labels than scikit-learn on {differing} of {n} verification rows")
        verified["labels_equal"] = True
    else:
        expected = np.asarray(expected, dtype=np.float64).ravel()
        relative = np.abs(got.astype(np.float64) - expected) / np.maximum(1.0, np.abs(expected))
        worst = float(np.max(relative)) if n else 0.0
        if worst > VALUE_TOLERANCE:
            raise CompileError(f"ONNX predictions differ from scikit-learn's on {int(np.sum(relative > VALUE_TOLERANCE))} "
                               f"of {n} verification rows, by up to {worst:.2e} (relative; > {VALUE_TOLERANCE})")
        verified["max_value_diff"] = worst
    if compiled.has_proba and expected_proba is not None:
        diff = float(np.max(np.abs(compiled.predict_proba(feeds) - expected_proba)))
        if diff > PROBABILITY_TOLERANCE:
            raise CompileError(f"ONNX probabilities differ from scikit-learn's by up to {diff:.4f} (> {PROBABILITY_TOLERANCE})")
        verified["max_probability_diff"] = diff
    return verified


class OnnxEstimator:
    """The slice of the scikit-learn estimator API the server uses, backed by an ONNX Runtime session.

    Without a schema, or for the matrix layout, it takes a 2-D array; for the frame and text layouts,
    a dict of 1-D arrays by feature name.
    """

    def __init__(self, path: pathlib.Path, classes=None, schema=None):
        try:
            import onnxruntime
        except ImportError:
            raise ModelUnreadable(f"{path} is compiled for ONNX Runtime, which this installation lacks; install "
                                  "requirements-onnx.txt (image: --build-arg REQUIREMENTS=requirements-onnx.txt)") from None
        options = onnxruntime.SessionOptions()
        # One thread per call: the server makes every call from its one model thread, and Cloud Run's
        # instance has one vCPU; intra-op threads would only contend.
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ModelUnreadable(f"{path} is not a loadable ONNX model: {type(e).__name__}") from None
        inputs = self._session.get_inputs()
        unknown = [f"{i.name} ({i.type})" for i in inputs if i.type not in _NUMPY_TYPES]
        if unknown:
            raise ModelUnreadable(f"{path} takes inputs of types this server cannot feed: {', '.join(unknown)}")
        self.has_proba = len(self._session.get_outputs()) > 1
        self.classes_ = None if classes is None else np.asarray(classes)
        self._matrix = schema is None or schema.layout == "matrix"
        if self._matrix:
            self._input = (inputs[0].name, _NUMPY_TYPES[inputs[0].type])
            self.n_features_in_ = inputs[0].shape[1]
            return
        if len(inputs) != len(schema.features):
            raise ModelIntegrityError(f"{path} takes {len(inputs)} inputs but the schema names {len(schema.features)} features")
        self._columns = [(f.name, i.name, _NUMPY_TYPES[i.type]) for f, i in zip(schema.features, inputs)]
        self.n_features_in_ = len(inputs)

    def _run(self, rows):
        if self._matrix:
            name, dtype = self._input
            return self._session.run(None, {name: np.ascontiguousarray(rows, dtype=dtype)})
        return self._session.run(None, {onnx_name: np.asarray(rows[name], dtype=dtype).reshape(-1, 1)
                                        for name, onnx_name, dtype in self._columns})

    def predict(self, rows) -> np.ndarray:
        return self._run(rows)[0].ravel()

    def predict_proba(self, rows) -> np.ndarray:
        return self._run(rows)[1].astype(np.float64)

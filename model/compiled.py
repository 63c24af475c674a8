"""An opt-in compiled inference path: the model converted to ONNX and run by ONNX Runtime.

Serving through ONNX Runtime needs neither scikit-learn nor SciPy in the serving process, which
removes most of a cold start, and it answers single rows in tens of microseconds. It is chosen per
model when the model is built (`python -m model train --runtime onnx`), and only after the converted
model gave the same labels as scikit-learn on every held-out row; scikit-learn stays the default.
Tree ensembles compare 32-bit thresholds in ONNX, so probabilities can differ slightly (each tree
of a hundred that goes the other way near a threshold moves a probability by 0.01); up to
PROBABILITY_TOLERANCE is accepted and the largest difference seen is recorded in the manifest.
"""

import pathlib

import numpy as np

from model import manifest as manifests
from model.errors import ModelUnreadable

ONNX_NAME = "model.onnx"
PROBABILITY_TOLERANCE = 0.05


class CompileError(Exception):
    """The converted model does not behave like the scikit-learn one; it is not used."""


def compile_onnx(estimator, out: pathlib.Path, held_out: np.ndarray) -> dict:
    """Converts, verifies on `held_out` rows, writes model.onnx; returns the manifest's `compiled` entry."""
    import onnxruntime
    from skl2onnx import to_onnx

    onx = to_onnx(estimator, held_out[:1].astype(np.float64), options={"zipmap": False})
    path = out / ONNX_NAME
    path.write_bytes(onx.SerializeToString())
    compiled = OnnxEstimator(path, getattr(estimator, "classes_", None))
    labels, expected = compiled.predict(held_out), estimator.predict(held_out)
    differing = int(np.sum(labels != expected))
    if differing:
        path.unlink()
        raise CompileError(f"ONNX gives other labels than scikit-learn on {differing} of {len(held_out)} held-out rows")
    diff = 0.0
    if compiled.has_proba and hasattr(estimator, "predict_proba"):
        diff = float(np.max(np.abs(compiled.predict_proba(held_out) - estimator.predict_proba(held_out))))
        if diff > PROBABILITY_TOLERANCE:
            path.unlink()
            raise CompileError(f"ONNX probabilities differ from scikit-learn's by up to {diff:.4f} (> {PROBABILITY_TOLERANCE})")
    return {"file": ONNX_NAME, "format": "onnx", "sha256": manifests.sha256_of(path), "size": path.stat().st_size,
            "onnxruntime": onnxruntime.__version__,
            "verified": {"held_out_rows": len(held_out), "labels_equal": True, "max_probability_diff": diff}}


class OnnxEstimator:
    """The slice of the scikit-learn estimator API the server uses, backed by an ONNX Runtime session."""

    def __init__(self, path: pathlib.Path, classes=None):
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
        self._input = self._session.get_inputs()[0].name
        self.has_proba = len(self._session.get_outputs()) > 1
        self.classes_ = None if classes is None else np.asarray(classes)
        self.n_features_in_ = self._session.get_inputs()[0].shape[1]

    def _run(self, rows: np.ndarray):
        return self._session.run(None, {self._input: np.ascontiguousarray(rows, dtype=np.float64)})

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return self._run(rows)[0].ravel()

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        return self._run(rows)[1].astype(np.float64)

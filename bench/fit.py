"""The shared model files: one fitted estimator per model, in the format each system loads.

Our function loads the directory `python -m model train` writes; the peers load the very same fitted
estimator, re-saved with joblib (their native format). When `python -m model train` is not available
the estimators are fitted here with the same settings, and our function is left out of the run.
"""

import dataclasses
import json
import pathlib
import subprocess
import sys

import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from bench.plan import BATCH_ROWS, REPO_DIR

RANDOM_STATE = 0


@dataclasses.dataclass(frozen=True)
class ModelFiles:
    name: str  # "forest" or "logreg"
    joblib_path: pathlib.Path  # what the peers and the in-process floor load
    ours_dir: pathlib.Path | None  # what MODEL_URI points at; None without `python -m model train`
    ours_onnx_dir: pathlib.Path | None  # the same estimator compiled with `--runtime onnx`
    row: list[float]  # the single-row request
    batch: list[list[float]]  # the 256-row request
    expected_row: object  # what every system must answer for `row`
    expected_batch: list  # ... and for `batch`


def _request_rows() -> tuple[list[float], list[list[float]]]:
    features = load_iris().data
    # A class-2 flower near the versicolor border, so a wrong model is likely to answer differently.
    row = [float(v) for v in features[133]]
    batch = np.resize(features, (BATCH_ROWS, features.shape[1])).tolist()
    return row, batch


def _train_ours(estimator: str, out: pathlib.Path, runtime: str = "sklearn") -> bool:
    if not (REPO_DIR / "model" / "__main__.py").exists():
        return False
    cmd = [sys.executable, "-m", "model", "train", "--estimator", estimator, "--runtime", runtime, "--out", str(out)]
    subprocess.run(cmd, cwd=REPO_DIR, check=True, capture_output=True, text=True)
    return True


def _load_ours(model_dir: pathlib.Path):
    manifest = json.loads((model_dir / "manifest.json").read_text())
    artifact = model_dir / manifest["artifact"]["file"]
    if manifest["artifact"]["format"] == "skops":
        import skops.io

        # Our own artifact, just written by `python -m model train`: its types are trusted.
        return skops.io.load(artifact, trusted=skops.io.get_untrusted_types(file=artifact))
    return joblib.load(artifact)


def _fit_here(estimator: str):
    data = load_iris()
    model = (
        RandomForestClassifier(n_estimators=100, random_state=RANDOM_STATE)
        if estimator == "forest"
        else LogisticRegression(max_iter=1000)
    )
    return model.fit(data.data, data.target)


def prepare(name: str, work_dir: pathlib.Path, with_ours: bool = True) -> ModelFiles:
    """Fits model `name` into `work_dir` and computes the answers every system must give."""
    ours_dir = work_dir / f"ours-{name}"
    have_ours = with_ours and _train_ours(name, ours_dir)
    # Training is deterministic, so the compiled copy holds the very same fitted estimator.
    onnx_dir = work_dir / f"ours-onnx-{name}"
    have_onnx = have_ours and _train_ours(name, onnx_dir, runtime="onnx")
    estimator = _load_ours(ours_dir) if have_ours else _fit_here(name)
    joblib_path = work_dir / f"{name}.joblib"
    joblib.dump(estimator, joblib_path)
    row, batch = _request_rows()
    return ModelFiles(
        name=name,
        joblib_path=joblib_path,
        ours_dir=ours_dir if have_ours else None,
        ours_onnx_dir=onnx_dir if have_onnx else None,
        row=row,
        batch=batch,
        expected_row=estimator.predict(np.asarray([row])).tolist()[0],
        expected_batch=estimator.predict(np.asarray(batch)).tolist(),
    )

"""The shared model files: one fitted estimator per model, in the format each system loads.

Our function serves the directory `python -m model train` writes as the image does: in a copy of the
app (the files the Dockerfile copies) with the directory as its built-in model, baked by `python -m
model bake` run with the function's own venv (as in the image's build stage). The same directory is
also served through MODEL_URI, as a model from anywhere else is (the full safe path). The peers load the
very same fitted estimator, re-saved with joblib (their native format). When `python -m model train`
is not available the estimators are fitted here with the same settings, and our function is left out.
"""

import dataclasses
import json
import pathlib
import shutil
import subprocess
import sys

import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from bench import venvs
from bench.plan import APP_FILES, BATCH_ROWS, REPO_DIR

RANDOM_STATE = 0


@dataclasses.dataclass(frozen=True)
class ModelFiles:
    name: str  # "forest" or "logreg"
    joblib_path: pathlib.Path  # what the peers and the in-process floor load
    ours_dir: pathlib.Path | None  # what MODEL_URI points at; None without `python -m model train`
    ours_app: pathlib.Path | None  # a copy of the app with the model baked into its built-in directory
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


def _deploy_ours(model_dir: pathlib.Path, app: pathlib.Path, python: pathlib.Path) -> pathlib.Path:
    """The app as the image holds it: its files, and the model (these very files) baked into model/artifacts."""
    if app.exists():
        shutil.rmtree(app)
    app.mkdir(parents=True)
    for name in APP_FILES:
        source = REPO_DIR / name
        if source.is_dir():
            shutil.copytree(source, app / name, ignore=shutil.ignore_patterns("__pycache__", "artifacts"))
        else:
            shutil.copy2(source, app / name)
    shutil.copytree(model_dir, app / "model" / "artifacts")
    subprocess.run([str(python), "-m", "model", "bake"], cwd=app, check=True, capture_output=True, text=True)
    venvs.compile_optimized(python, app)
    return app


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


def prepare(name: str, work_dir: pathlib.Path, with_ours: bool = True, ours_python: pathlib.Path | None = None) -> ModelFiles:
    """Fits model `name` into `work_dir` and computes the answers every system must give.

    `ours_python`: the function's venv, which builds its app copy (as the image's build stage does)."""
    ours_dir = work_dir / f"ours-{name}"
    have_ours = with_ours and _train_ours(name, ours_dir)
    app = _deploy_ours(ours_dir, work_dir / f"app-{name}", ours_python or pathlib.Path(sys.executable)) if have_ours else None
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
        ours_app=app,
        ours_onnx_dir=onnx_dir if have_onnx else None,
        row=row,
        batch=batch,
        expected_row=estimator.predict(np.asarray([row])).tolist()[0],
        expected_batch=estimator.predict(np.asarray(batch)).tolist(),
    )

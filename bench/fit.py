"""The shared model files: one fitted estimator per model, in the format each system loads.

Our function serves the directory `python -m model train` writes as the image does: in a copy of the
app (the files the Dockerfile copies) with the directory as its built-in model, baked by `python -m
model bake` run with the function's own venv (as in the image's build stage). The same directory is
also served through MODEL_URI, as a model from anywhere else is (the full safe path). The peers load the
very same fitted estimator, re-saved with joblib (their native format). When `python -m model train`
is not available the estimators are fitted here with the same settings, and our function is left out.

"churn" is the customer-churn DataFrame pipeline the tests fit (`tests.models.churn_pipeline`: numbers
with gaps, two string columns, a boolean). Its joblib file is what the peers load, and our function
serves what `python -m model package` makes of that very file, with the fitted rows as the sample:
baked into the app copy's built-in directory, and through MODEL_URI, as for the iris models.
Its requests carry rows as objects keyed by column name, with null for a missing number.
"""

import dataclasses
import json
import math
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
FRAME_MODELS = ("churn",)
# The single churn row: a typical request, every value present.
CHURN_ROW = {"tenure_months": 3, "monthly_charges": 80.5, "contract": "month-to-month", "payment": "card",
             "senior": False}


@dataclasses.dataclass(frozen=True)
class ModelFiles:
    name: str  # "forest", "logreg" or "churn"
    joblib_path: pathlib.Path  # what the peers and the in-process floor load
    ours_dir: pathlib.Path | None  # what MODEL_URI points at; None without `python -m model train`
    ours_app: pathlib.Path | None  # a copy of the app with the model baked into its built-in directory
    ours_onnx_dir: pathlib.Path | None  # the same estimator compiled with `--runtime onnx`
    row: list[float] | dict  # the single-row request: numbers, or an object keyed by column ("frame")
    batch: list  # the 256-row request, rows as `row`
    expected_row: object  # what every system must answer for `row`
    expected_batch: list  # ... and for `batch`
    layout: str = "matrix"  # "matrix": a float matrix; "frame": a DataFrame pipeline, rows as objects


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


def _package_ours(source: pathlib.Path, sample: pathlib.Path, out: pathlib.Path, runtime: str = "sklearn") -> bool:
    if not (REPO_DIR / "model" / "package.py").exists():
        return False
    cmd = [sys.executable, "-m", "model", "package", str(source), "--out", str(out), "--sample", str(sample),
           "--allow-pickle", "--runtime", runtime]
    subprocess.run(cmd, cwd=REPO_DIR, check=True, capture_output=True, text=True)
    return True


def _records(frame) -> list[dict]:
    """A DataFrame's rows as JSON objects: a missing number is null, as a client sends it."""
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
            for row in frame.to_dict("records")]


def _prepare_frame(name: str, work_dir: pathlib.Path, with_ours: bool, ours_python: pathlib.Path) -> ModelFiles:
    import pandas as pd

    from tests import models  # the pipeline the tests fit, so the benchmark serves that very model

    fitted = models.churn_pipeline()
    joblib_path = work_dir / f"{name}.joblib"
    joblib.dump(fitted.estimator, joblib_path)
    sample = models.write_sample(fitted, work_dir / f"{name}-sample.jsonl")
    ours_dir, onnx_dir = work_dir / f"ours-{name}", work_dir / f"ours-onnx-{name}"
    have_ours = with_ours and _package_ours(joblib_path, sample, ours_dir)
    app = _deploy_ours(ours_dir, work_dir / f"app-{name}", ours_python) if have_ours else None
    have_onnx = have_ours and _package_ours(joblib_path, sample, onnx_dir, runtime="onnx")
    rows = _records(fitted.rows)
    batch = (rows * -(-BATCH_ROWS // len(rows)))[:BATCH_ROWS]
    columns = list(fitted.rows.columns)
    # The answers of the estimator itself, on the rows as a notebook builds them from the same objects.
    predict = fitted.estimator.predict
    return ModelFiles(
        name=name, joblib_path=joblib_path,
        ours_dir=ours_dir if have_ours else None, ours_app=app, ours_onnx_dir=onnx_dir if have_onnx else None,
        row=dict(CHURN_ROW), batch=batch,
        expected_row=predict(pd.DataFrame.from_records([CHURN_ROW], columns=columns)).tolist()[0],
        expected_batch=predict(pd.DataFrame.from_records(batch, columns=columns)).tolist(),
        layout="frame",
    )


def prepare(name: str, work_dir: pathlib.Path, with_ours: bool = True, ours_python: pathlib.Path | None = None) -> ModelFiles:
    """Fits model `name` into `work_dir` and computes the answers every system must give.

    `ours_python`: the function's venv, which builds its app copy (as the image's build stage does)."""
    ours_python = ours_python or pathlib.Path(sys.executable)
    work_dir.mkdir(parents=True, exist_ok=True)
    if name in FRAME_MODELS:
        return _prepare_frame(name, work_dir, with_ours, ours_python)
    ours_dir = work_dir / f"ours-{name}"
    have_ours = with_ours and _train_ours(name, ours_dir)
    app = _deploy_ours(ours_dir, work_dir / f"app-{name}", ours_python) if have_ours else None
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

"""Numeric models never import pandas; DataFrame models still get it when they need it; a model compiled
to ONNX is served without scikit-learn, SciPy or pandas (the compiled image has none of them)."""

import json
import os
import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import json, pathlib, sys
from model import artifact
from inference.warmup import warm_up
model = artifact.load(pathlib.Path(sys.argv[1]), artifact.LoadPolicy())
warm_up(model)
after_numeric = "pandas" in sys.modules
import pandas as pd
from sklearn.linear_model import LogisticRegression
frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
fitted = LogisticRegression().fit(frame, [0, 1, 0, 1])
print(json.dumps({"pandas_after_numeric": after_numeric, "names": fitted.feature_names_in_.tolist(),
                  "labels": fitted.predict(frame).tolist()}))
"""


def test_a_numeric_model_loads_and_predicts_without_pandas_which_still_works_later(trained):
    done = subprocess.run([sys.executable, "-c", PROBE, str(trained("logreg"))], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["pandas_after_numeric"] is False
    assert seen["names"] == ["a", "b"] and seen["labels"] == [0, 1, 0, 1]


SERVE_COMPILED = """
import json, sys
from model import imports

# As in the compiled image, where these are not installed: any import of them fails.
with imports.hidden("sklearn", "scipy", "pandas", "skops", "joblib"):
    import functions_framework
    from starlette.testclient import TestClient

    app = functions_framework.create_app(target="predict", source="main.py")
    row = [5.1, 3.5, 1.4, 0.2]
    v2 = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": row}]}
    with TestClient(app) as client:
        answers = {
            "predict": client.post("/predict", json={"features": row}).json(),
            "proba": client.post("/predict", json={"instances": [row], "parameters": {"probabilities": True}}).json(),
            "v1": client.post("/v1/models/iris:predict", json={"instances": [row]}).json(),
            "v2": client.post("/v2/models/iris/infer", json=v2).status_code,
            "bad": client.post("/predict", json={"features": [1, 2]}).status_code,
            "metadata": client.get("/").json()["format"],
            "openapi": client.get("/openapi.json").status_code,
        }
print(json.dumps({"answers": answers,
                  "imported": sorted({m.split(".")[0] for m in sys.modules} & {"sklearn", "scipy", "pandas", "skops"})}))
"""


def test_the_compiled_runtime_serves_without_scikit_learn_scipy_or_pandas(tmp_path):
    from model import training

    training.train(tmp_path, kind="forest", runtime="onnx")
    env = {**os.environ, "MODEL_URI": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", SERVE_COMPILED], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    answers = seen["answers"]
    assert answers["predict"]["predictions"] == [0] and len(answers["proba"]["probabilities"][0]) == 3
    assert answers["v1"]["predictions"] == [0]
    assert (answers["v2"], answers["bad"], answers["metadata"], answers["openapi"]) == (200, 400, "onnx", 200)
    assert seen["imported"] == []


def test_without_scikit_learn_a_scikit_learn_model_is_refused_saying_why(trained):
    probe = """
import pathlib, sys
from model import artifact, imports
from model.errors import ModelUnreadable
with imports.hidden("sklearn", "scipy", "skops"):
    try:
        artifact.load(pathlib.Path(sys.argv[1]), artifact.LoadPolicy())
    except ModelUnreadable as e:
        print(e)
"""
    done = subprocess.run([sys.executable, "-c", probe, str(trained("logreg"))], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "served by scikit-learn" in done.stdout and "--runtime onnx" in done.stdout

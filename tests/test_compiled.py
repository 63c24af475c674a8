"""The opt-in ONNX runtime: verified before use, checked like any artifact, served without scikit-learn."""

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_iris

from model import artifact, compiled, training
from model.errors import ModelIntegrityError
from tests.conftest import REPO


@pytest.fixture(scope="module", params=training.ESTIMATORS)
def onnx_model(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"onnx-{request.param}")
    training.train(out, kind=request.param, runtime="onnx")
    return out


def test_train_onnx_records_the_verification_in_the_manifest(onnx_model):
    manifest = json.loads((onnx_model / "manifest.json").read_text())
    assert manifest["runtime"] == "onnx"
    verified = manifest["compiled"]["verified"]
    assert verified["labels_equal"] is True and verified["held_out_rows"] == 30
    assert 0 <= verified["max_probability_diff"] <= compiled.PROBABILITY_TOLERANCE
    assert (onnx_model / "model.onnx").is_file() and (onnx_model / "model.skops").is_file()


def test_onnx_labels_match_scikit_learn(onnx_model):
    fast = artifact.load(onnx_model, artifact.LoadPolicy())
    manifest = json.loads((onnx_model / "manifest.json").read_text())
    manifest["runtime"] = "sklearn"
    (onnx_model / "reference.json").write_text(json.dumps(manifest))
    reference = artifact.load(onnx_model / "reference.json", artifact.LoadPolicy())
    rows = load_iris().data
    assert fast.format == "onnx" and reference.format == "skops"
    assert fast.estimator.predict(rows).tolist() == reference.estimator.predict(rows).tolist()
    assert fast.classes == reference.classes and fast.features == reference.features
    assert np.allclose(fast.estimator.predict_proba(rows), reference.estimator.predict_proba(rows),
                       atol=compiled.PROBABILITY_TOLERANCE)


def test_tampered_onnx_file_is_refused(onnx_model, tmp_path):
    import shutil

    copy = shutil.copytree(onnx_model, tmp_path / "copy")
    with open(copy / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelIntegrityError, match="model.onnx has SHA-256"):
        artifact.load(copy, artifact.LoadPolicy())


def test_compile_refuses_a_model_that_drifts(tmp_path, monkeypatch):
    monkeypatch.setattr(compiled, "PROBABILITY_TOLERANCE", 0.0)
    with pytest.raises(compiled.CompileError, match="differ"):
        training.train(tmp_path, kind="forest", runtime="onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_cli_says_why_a_compile_was_refused(tmp_path):
    result = subprocess.run([sys.executable, "-m", "model", "train", "--runtime", "tpu", "--out", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice: 'tpu'" in result.stderr


def test_serving_onnx_never_imports_scikit_learn(onnx_model):
    script = (
        "import sys, functions_framework\n"
        "from starlette.testclient import TestClient\n"
        "c = TestClient(functions_framework.create_app(target='predict', source='main.py'))\n"
        "r = c.post('/predict', json={'features': [5.1, 3.5, 1.4, 0.2], 'parameters': {'probabilities': True}})\n"
        "assert r.status_code == 200, r.content\n"
        "print(r.json()['predictions'], sorted(m for m in ('sklearn', 'scipy', 'skops') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "MODEL_URI": str(onnx_model), "MODEL_WARMUP": "false"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[0] []"

"""`python -m model package`: a real subprocess per call; the packaged directory answers as the source did."""

import json
import pathlib
import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.datasets import load_iris
from sklearn.dummy import DummyClassifier
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler

from model import artifact, compiled, examples, schema
from tests import models
from tests.conftest import REPO

FACTORIES = {"churn": models.churn_pipeline, "spam": models.text_classifier, "house": models.nan_regressor}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> pathlib.Path:
    """Each test model as joblib and skops files, and its fitted rows as CSV and JSON lines samples."""
    directory = tmp_path_factory.mktemp("sources")
    for name, factory in FACTORIES.items():
        for fmt in ("joblib", "skops"):
            models.dump(factory(), directory, fmt, name)
        for suffix in (".csv", ".jsonl"):
            models.write_sample(factory(), directory / f"{name}{suffix}")
    return directory


def package(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model", "package", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def packaged(sources, tmp_path_factory):
    """Factory: the output directory and process of one `package` call, run once per module."""
    done = {}

    def make(source: str, *options: str) -> tuple[pathlib.Path, subprocess.CompletedProcess]:
        key = (source, *options)
        if key not in done:
            out = tmp_path_factory.mktemp("packaged") / "model"
            options = [str(sources / o) if o.endswith((".csv", ".jsonl")) else o for o in options]
            result = package(sources / source, "--out", out, *options)
            assert result.returncode == 0, result.stderr
            done[key] = out, result
        return done[key]

    return make


def _source_rows(name: str):
    rows = FACTORIES[name]().rows
    return rows if isinstance(rows, pd.DataFrame) else np.asarray(rows, dtype=object)


def _assert_answers_like_the_source(out: pathlib.Path, name: str) -> artifact.LoadedModel:
    source = FACTORIES[name]().estimator
    loaded = artifact.load(out, artifact.LoadPolicy())
    rows = _source_rows(name)
    model_input = rows.to_numpy() if loaded.schema.layout == "matrix" else rows
    assert np.array_equal(loaded.estimator.predict(model_input), source.predict(rows))
    if hasattr(source, "predict_proba"):
        assert np.array_equal(loaded.estimator.predict_proba(model_input), source.predict_proba(rows))
    return loaded


CASES = [
    ("churn", "churn.joblib", "--allow-pickle", "--sample", "churn.csv"),
    ("churn", "churn.skops", "--sample", "churn.jsonl", "--name", "churn-model", "--version", "7"),
    ("churn", "churn.skops"),
    ("spam", "spam.skops", "--sample", "spam.csv"),
    ("spam", "spam.joblib", "--allow-pickle"),
    ("house", "house.skops", "--sample", "house.jsonl"),
    ("house", "house.skops"),
]


# The matrix fast path calls a model fitted on a DataFrame with an array; scikit-learn says so, rightly.
@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.parametrize("case", CASES, ids=[" ".join(c[1:]) for c in CASES])
def test_package_writes_a_directory_the_server_loads_and_that_answers_like_the_source(packaged, case):
    name, source, *options = case
    out, result = packaged(source, *options)
    *_, last = result.stdout.strip().splitlines()
    printed = json.loads(last)
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["examples.jsonl", "manifest.json", "model.skops"]
    assert printed["sha256"] == manifest["artifact"]["sha256"] and printed["runtime"] == "sklearn"
    assert manifest["name"] == ("churn-model" if "--name" in options else name)
    assert manifest["version"] == ("7" if "--version" in options else "1")
    assert manifest["packaged_from"]["file"] == source and manifest["framework"]["pandas"] == pd.__version__
    assert manifest["verified"]["predictions_equal"] is True
    assert manifest["verified"]["rows_from"] == ("sample" if "--sample" in options else "generated")
    loaded = _assert_answers_like_the_source(out, name)
    expected = schema.derive(FACTORIES[name]().estimator, _sample_frame(name) if "--sample" in options else None)
    assert loaded.schema == expected and manifest["schema"] == expected.to_dict()
    assert printed["layout"] == expected.layout and printed["features"] == expected.names


def _sample_frame(name: str):
    rows = FACTORIES[name]().rows
    return rows if isinstance(rows, pd.DataFrame) else pd.DataFrame({"text": rows})


def test_package_prints_what_it_found(packaged):
    _, result = packaged("churn.joblib", "--allow-pickle", "--sample", "churn.csv")
    text = result.stdout
    assert "Inputs (frame: a DataFrame with these columns):" in text
    assert "contract         string   required  one of month-to-month, one-year, two-year (others refused)" in text
    assert "payment          string   nullable  one of bank, card, cheque (others answered)" in text
    assert "senior           boolean  required  (from the sample)" in text
    assert "Verified: the packaged model predicts what the source predicts on 240 sample rows" in text


def test_package_examples_are_the_sample_rows_and_the_model_answers_them(packaged):
    out, _ = packaged("churn.joblib", "--allow-pickle", "--sample", "churn.csv")
    manifest = json.loads((out / "manifest.json").read_text())
    rows = examples.read(out, manifest["examples"])
    assert manifest["examples"]["rows"] == len(rows) == examples.MAX_ROWS
    frame = models.churn_pipeline().rows.head(examples.MAX_ROWS)
    assert [r["contract"] for r in rows] == frame["contract"].tolist()
    assert [r["senior"] for r in rows] == frame["senior"].tolist()
    assert [r["tenure_months"] for r in rows] == [None if np.isnan(v) else v for v in frame["tenure_months"]]
    assert any(r["monthly_charges"] is None for r in rows)


def test_package_without_a_sample_generates_rows_covering_the_schema(packaged):
    out, _ = packaged("churn.skops")
    rows = examples.read(out, json.loads((out / "manifest.json").read_text())["examples"])
    assert {r["contract"] for r in rows} == set(models.CONTRACTS)
    assert set(models.PAYMENTS) < {r["payment"] for r in rows}, "an unseen payment, which the model answers, too"
    assert None in {r["tenure_months"] for r in rows} and None not in {r["contract"] for r in rows}


def test_package_onnx_compiles_the_pipeline_with_its_string_columns(packaged):
    out, result = packaged("churn.skops", "--sample", "churn.csv", "--runtime", "onnx")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runtime"] == "onnx" and (out / "model.onnx").is_file()
    loaded = artifact.load(out, artifact.LoadPolicy())
    assert loaded.format == "onnx"
    by_name = {f.name: f for f in loaded.schema.features}
    # The compiled model takes NaN in number columns (its imputer is converted) and none in strings.
    assert by_name["tenure_months"].nullable and not by_name["payment"].nullable
    rows = models.churn_pipeline().rows
    source = models.churn_pipeline().estimator
    columns = compiled.inputs_for(rows, loaded.schema)
    assert columns["contract"].dtype == object and columns["senior"].dtype == bool
    assert loaded.estimator.predict(columns).tolist() == source.predict(rows).tolist()
    assert np.allclose(loaded.estimator.predict_proba(columns), source.predict_proba(rows),
                       atol=compiled.PROBABILITY_TOLERANCE)
    assert "Compiled to ONNX and verified on 240 rows" in result.stdout


def test_package_onnx_compiles_the_text_classifier(packaged):
    out, _ = packaged("spam.skops", "--runtime", "onnx")
    loaded = artifact.load(out, artifact.LoadPolicy())
    texts = models.text_classifier().rows + ["FREE prize, call now!", "lunch at noon?"]
    labels = loaded.estimator.predict({"text": np.array(texts, dtype=object)})
    assert labels.tolist() == models.text_classifier().estimator.predict(texts).tolist()


def _refused(result: subprocess.CompletedProcess, message: str, out: pathlib.Path) -> None:
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m model package: "), result.stderr
    assert message in lines[0], lines[0]
    assert not out.exists(), "a refused model must leave nothing to serve"


def test_package_refuses_pickle_without_the_opt_in(sources, tmp_path):
    result = package(sources / "churn.joblib", "--out", tmp_path / "out")
    _refused(result, "is a joblib file, and loading it runs code from the file: pass --allow-pickle", tmp_path / "out")


def in_process(*args) -> subprocess.CompletedProcess:
    """The command line's own entry point in this process: the same parsing and messages, without the imports."""
    import contextlib
    import io

    from model.__main__ import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["package", *map(str, args)])
    return subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())


def test_package_refuses_what_is_not_a_fitted_model(tmp_path):
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression()), tmp_path / "unfitted.joblib")
    _refused(in_process(tmp_path / "unfitted.joblib", "--allow-pickle", "--out", tmp_path / "a"),
             "the Pipeline is not fitted: fit it before packaging", tmp_path / "a")
    joblib.dump(StandardScaler().fit([[1.0], [2.0]]), tmp_path / "scaler.pkl")
    _refused(in_process(tmp_path / "scaler.pkl", "--allow-pickle", "--out", tmp_path / "b"),
             "holds a StandardScaler, which is not a model (it has no predict method)", tmp_path / "b")


def test_package_refuses_a_sample_without_the_columns_the_model_needs(sources, tmp_path):
    frame = models.churn_pipeline().rows.drop(columns=["contract", "senior"])
    frame.to_csv(tmp_path / "partial.csv", index=False)
    result = in_process(sources / "churn.skops", "--sample", tmp_path / "partial.csv", "--out", tmp_path / "out")
    _refused(result, "the sample lacks columns the model needs: contract, senior", tmp_path / "out")


def test_package_refuses_a_model_whose_packaged_answers_differ(tmp_path):
    data = load_iris()
    # Draws its answers at random on every call: no packaged copy can reproduce them.
    skops.io.dump(DummyClassifier(strategy="uniform").fit(data.data, data.target), tmp_path / "dice.skops")
    result = in_process(tmp_path / "dice.skops", "--out", tmp_path / "out")
    _refused(result, "the packaged model predicts differently from the source on", tmp_path / "out")


def test_package_refuses_skops_types_outside_the_servers_list(tmp_path):
    data = load_iris()
    skops.io.dump(make_pipeline(SplineTransformer(), LogisticRegression(max_iter=500)).fit(data.data, data.target),
                  tmp_path / "spline.skops")
    result = in_process(tmp_path / "spline.skops", "--out", tmp_path / "out")
    _refused(result, "holds types outside the server's trusted list: ", tmp_path / "out")
    assert "scipy.interpolate._bsplines.BSpline" in result.stderr and "MODEL_TRUSTED_TYPES=" in result.stderr


def test_package_onnx_refuses_naming_the_step_skl2onnx_cannot_convert(tmp_path):
    data = load_iris()
    estimator = make_pipeline(Nystroem(n_components=10, random_state=0), LogisticRegression(max_iter=500))
    skops.io.dump(estimator.fit(data.data, data.target), tmp_path / "kernel.skops")
    result = in_process(tmp_path / "kernel.skops", "--runtime", "onnx", "--out", tmp_path / "out")
    _refused(result, "skl2onnx has no converter for sklearn.kernel_approximation.Nystroem", tmp_path / "out")
    assert result.stderr.strip().endswith("keep --runtime sklearn for this model")


def test_a_packaged_model_publishes_and_loads_from_cloud_storage(packaged, tmp_path, monkeypatch):
    from model import gcs, publish, sources
    from tests.gcs_server import StorageServer

    out, _ = packaged("churn.skops", "--sample", "churn.jsonl", "--name", "churn-model", "--version", "7")
    server = StorageServer(tmp_path / "gcs-data").start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
    gcs.reset_client()
    try:
        publish.publish(out, "gs://models/churn")
        fetched = sources.fetch("gs://models/churn", sources.FetchOptions(cache_dir=tmp_path / "cache", timeout_s=10))
        loaded = artifact.load(fetched.path, artifact.LoadPolicy())
    finally:
        server.stop()
        gcs.reset_client()
    assert loaded.name == "churn-model" and loaded.schema == artifact.load(out, artifact.LoadPolicy()).schema
    rows = models.churn_pipeline().rows
    assert loaded.estimator.predict(rows).tolist() == models.churn_pipeline().estimator.predict(rows).tolist()


def test_a_compiled_dataframe_model_answers_without_scikit_learn_scipy_or_pandas(packaged):
    out, _ = packaged("churn.skops", "--sample", "churn.csv", "--runtime", "onnx")
    script = (
        "import sys, numpy as np\n"
        "from model import artifact\n"
        f"model = artifact.load(__import__('pathlib').Path({str(out)!r}), artifact.LoadPolicy())\n"
        "columns = {'tenure_months': np.array([3.0, np.nan]), 'monthly_charges': np.array([99.5, 20.0]),\n"
        "           'contract': np.array(['month-to-month', 'two-year'], dtype=object),\n"
        "           'payment': np.array(['card', 'bank'], dtype=object), 'senior': np.array([True, False])}\n"
        "print(model.estimator.predict(columns).tolist(), sorted(m for m in ('sklearn', 'scipy', 'pandas', 'skops')\n"
        "                                                  if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = pd.DataFrame({"tenure_months": [3.0, np.nan], "monthly_charges": [99.5, 20.0],
                         "contract": ["month-to-month", "two-year"], "payment": ["card", "bank"], "senior": [True, False]})
    expected = models.churn_pipeline().estimator.predict(rows).tolist()
    assert result.stdout.strip() == f"{expected} []"


def test_a_compiled_matrix_model_takes_missing_values_where_it_was_verified_on_them(packaged):
    out, _ = packaged("house.skops", "--runtime", "onnx")
    loaded = artifact.load(out, artifact.LoadPolicy())
    assert loaded.format == "onnx" and loaded.allow_nan and all(f.nullable for f in loaded.schema.features)
    rows = examples.read(out, json.loads((out / "manifest.json").read_text())["examples"])
    matrix = np.array([[np.nan if r[n] is None else r[n] for n in loaded.features] for r in rows])
    assert np.isnan(matrix).any()
    expected = models.nan_regressor().estimator.predict(pd.DataFrame(matrix, columns=loaded.features))
    assert np.allclose(loaded.estimator.predict(matrix), expected, rtol=compiled.VALUE_TOLERANCE)


def test_package_takes_a_numeric_dataframe_model_whose_floats_move_in_the_last_bits(tmp_path):
    """The most common model: numbers in a DataFrame. Served as a float matrix, scikit-learn's sums run
    in another order than on the DataFrame, so probabilities and values may move in the last bits:
    labels must be equal, the rest within FLOAT_TOLERANCE, and the difference is recorded."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(500, 7)), columns=list("abcdefg"))
    frame.to_csv(tmp_path / "rows.csv", index=False)
    fitted = {"lr": make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, frame.a + frame.b * frame.c > 0),
              "ridge": make_pipeline(StandardScaler(), Ridge()).fit(frame, frame.a * 3 + frame.g)}
    for name, estimator in fitted.items():
        joblib.dump(estimator, tmp_path / f"{name}.joblib")
        result = in_process(tmp_path / f"{name}.joblib", "--allow-pickle", "--sample", tmp_path / "rows.csv",
                            "--out", tmp_path / name)
        assert result.returncode == 0, result.stderr
        verified = json.loads((tmp_path / name / "manifest.json").read_text())["verified"]
        assert verified["rows"] == 500 and verified["predictions_equal"] is True
        drift = verified.get("max_probability_diff", verified.get("max_value_diff"))
        assert drift is not None and drift <= 1e-12
        served = artifact.load(tmp_path / name, artifact.LoadPolicy()).estimator.predict(frame.to_numpy())
        if name == "lr":
            assert served.tolist() == estimator.predict(frame).tolist()
        else:
            np.testing.assert_allclose(served, estimator.predict(frame), rtol=1e-12)


def test_package_of_a_model_that_fails_on_generated_rows_asks_for_a_sample(tmp_path):
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import FunctionTransformer

    frame = pd.DataFrame({"a": np.arange(50.0), "b": np.arange(50.0) ** 0.5})
    joblib.dump(make_pipeline(FunctionTransformer(np.log1p), Ridge()).fit(frame, frame.a * 2), tmp_path / "log.joblib")
    result = in_process(tmp_path / "log.joblib", "--allow-pickle", "--out", tmp_path / "out")
    _refused(result, "(rows generated from the schema; pass --sample FILE with rows the model takes)", tmp_path / "out")
    frame.to_csv(tmp_path / "rows.csv", index=False)
    assert in_process(tmp_path / "log.joblib", "--allow-pickle", "--sample", tmp_path / "rows.csv",
                      "--out", tmp_path / "out").returncode == 0

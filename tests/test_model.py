"""The model package: deterministic training, the manifest, and safe loading with clear refusals."""

import json
import pathlib

import joblib
import numpy as np
import pytest
import sklearn
import skops.io
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.preprocessing import FunctionTransformer

from model import artifact, manifest, training
from model.errors import ModelIntegrityError, ModelNotFound, ModelUnreadable, ModelUnsafe, ModelVersionMismatch

POLICY = artifact.LoadPolicy()


def test_train_writes_artifact_and_complete_manifest(tmp_path):
    written = training.train(tmp_path, kind="forest", name="flowers", version="7")
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk == written
    assert on_disk["name"] == "flowers" and on_disk["version"] == "7"
    assert on_disk["framework"]["scikit-learn"] == sklearn.__version__
    assert on_disk["framework"]["numpy"] == np.__version__
    assert on_disk["features"] == {"names": load_iris().feature_names, "count": 4}
    assert on_disk["classes"] == [0, 1, 2]
    assert on_disk["artifact"]["sha256"] == manifest.sha256_of(tmp_path / "model.skops")
    assert on_disk["created"].endswith("+00:00")


def test_train_is_deterministic(tmp_path):
    X = load_iris().data
    first = artifact.load(training.train(tmp_path / "a", kind="forest") and tmp_path / "a", POLICY)
    second = artifact.load(training.train(tmp_path / "b", kind="forest") and tmp_path / "b", POLICY)
    assert np.array_equal(first.estimator.predict_proba(X), second.estimator.predict_proba(X))


@pytest.mark.parametrize("kind", training.ESTIMATORS)
def test_load_gives_a_ready_model_from_directory_manifest_or_artifact(trained, kind):
    directory = trained(kind)
    for path in (directory, directory / "manifest.json", directory / "model.skops"):
        model = artifact.load(path, POLICY)
        assert model.name == "iris" and model.format == "skops"
        assert model.features == load_iris().feature_names
        assert model.estimator.predict(load_iris().data[:1]).tolist() == [0]


def test_load_missing_directory_names_the_path(tmp_path):
    with pytest.raises(ModelNotFound, match="holds neither manifest.json"):
        artifact.load(tmp_path, POLICY)


def test_load_missing_artifact_names_it(model_dir):
    (model_dir / "model.skops").unlink()
    with pytest.raises(ModelNotFound, match="model.skops named by .*manifest.json does not exist"):
        artifact.load(model_dir, POLICY)


def test_load_refuses_bytes_that_do_not_match_the_manifest(model_dir):
    with open(model_dir / "model.skops", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        artifact.load(model_dir, POLICY)


def test_load_refuses_an_invalid_manifest(model_dir):
    (model_dir / "manifest.json").write_text('{"artifact": {}}')
    with pytest.raises(ModelIntegrityError, match="artifact.file is missing"):
        artifact.load(model_dir, POLICY)
    (model_dir / "manifest.json").write_text("not json")
    with pytest.raises(ModelIntegrityError, match="not valid JSON"):
        artifact.load(model_dir, POLICY)


def test_load_refuses_an_unreadable_artifact(model_dir):
    (model_dir / "model.skops").write_bytes(b"not a zip")
    data = json.loads((model_dir / "manifest.json").read_text())
    data["artifact"]["sha256"] = manifest.sha256_of(model_dir / "model.skops")
    (model_dir / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelUnreadable, match="not a readable skops file"):
        artifact.load(model_dir, POLICY)


def test_load_refuses_another_scikit_learn_unless_allowed(model_dir, caplog):
    data = json.loads((model_dir / "manifest.json").read_text())
    data["framework"]["scikit-learn"] = "0.24.2"
    (model_dir / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelVersionMismatch, match=f"trained with scikit-learn 0.24.2 but {sklearn.__version__}"):
        artifact.load(model_dir, POLICY)
    model = artifact.load(model_dir, artifact.LoadPolicy(allow_version_mismatch=True))
    assert model.trained_with["scikit-learn"] == "0.24.2"
    assert "0.24.2" in caplog.text


def _log1p(x):
    return np.log1p(x)


def _dump_with_untrusted_type(directory: pathlib.Path) -> None:
    estimator = FunctionTransformer(func=_log1p).fit(load_iris().data)
    directory.mkdir()
    skops.io.dump(estimator, directory / "model.skops")
    manifest.write(manifest.build(name="t", version="1", estimator=estimator, features=load_iris().feature_names,
                                  classes=None, task="regression", artifact=directory / "model.skops"), directory)


def test_load_refuses_skops_types_outside_the_trusted_list(tmp_path):
    _dump_with_untrusted_type(tmp_path / "m")
    with pytest.raises(ModelUnsafe, match="tests.test_model._log1p"):
        artifact.load(tmp_path / "m", POLICY)


def test_pickle_needs_the_opt_in_and_then_takes_metadata_from_the_estimator(tmp_path, caplog):
    data = load_iris(as_frame=True)
    estimator = RandomForestClassifier(n_estimators=5, random_state=0).fit(data.data, data.target)
    path = tmp_path / "model.joblib"
    joblib.dump(estimator, path)
    with pytest.raises(ModelUnsafe, match="MODEL_ALLOW_PICKLE=true"):
        artifact.load(path, POLICY)
    for where in (path, tmp_path):
        model = artifact.load(where, artifact.LoadPolicy(allow_pickle=True))
        assert model.features == list(data.feature_names)
        assert model.classes == [0, 1, 2] and model.name == "model" and model.format == "joblib"
    assert "MODEL_ALLOW_PICKLE=true" in caplog.text


def test_pickle_manifest_format_needs_the_opt_in(tmp_path):
    estimator = RandomForestClassifier(n_estimators=3, random_state=0).fit(load_iris().data, load_iris().target)
    joblib.dump(estimator, tmp_path / "model.joblib")
    manifest.write(manifest.build(name="p", version="2", estimator=estimator, features=load_iris().feature_names,
                                  classes=[0, 1, 2], task="classification", artifact=tmp_path / "model.joblib",
                                  fmt="joblib"), tmp_path)
    with pytest.raises(ModelUnsafe):
        artifact.load(tmp_path, POLICY)
    assert artifact.load(tmp_path, artifact.LoadPolicy(allow_pickle=True)).version == "2"


def test_pickle_of_something_that_is_not_a_model_is_refused(tmp_path):
    joblib.dump({"not": "a model"}, tmp_path / "model.pkl")
    with pytest.raises(ModelUnreadable, match="not a fitted scikit-learn estimator|no predict method"):
        artifact.load(tmp_path / "model.pkl", artifact.LoadPolicy(allow_pickle=True))


def test_a_directory_of_several_pickles_is_refused_naming_them(tmp_path):
    estimator = RandomForestClassifier(n_estimators=3, random_state=0).fit(load_iris().data, load_iris().target)
    for name in ("b.joblib", "a.pkl"):
        joblib.dump(estimator, tmp_path / name)
    with pytest.raises(ModelIntegrityError, match=r"several pickle files \(a.pkl, b.joblib\)"):
        artifact.load(tmp_path, artifact.LoadPolicy(allow_pickle=True))
    (tmp_path / "a.pkl").unlink()
    assert artifact.load(tmp_path, artifact.LoadPolicy(allow_pickle=True)).name == "b"


def test_the_load_timeline_names_each_step(model_dir):
    from model.timeline import Timeline

    timeline = Timeline()
    artifact.load(model_dir, POLICY, timeline)
    steps = timeline.as_dict()
    assert set(steps) == {"import_s", "verify_s", "load_s", "total_s", "since_server_start_s"}
    assert all(value >= 0 for value in steps.values()) and steps["total_s"] >= steps["load_s"]

"""The built-in model's baked form: used only in the built-in directory, and only when every check passes.

A baked form is a pickle, which runs code when loaded; the tests plant one that would make a
directory if it were ever unpickled, and check it never is where it must not be.
"""

import json
import logging
import os
import pickle
import shutil
import subprocess
import sys

import pytest

from model import DEFAULT_MODEL_DIR, baked, training
from model.loader import ModelHolder
from model.manifest import sha256_of
from service import config
from tests.conftest import IRIS_ROW, REPO


class _Planted:
    """Unpickling this makes the directory it names: proof that the pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.fixture
def baked_dir(trained, tmp_path):
    """A private copy of a trained model, baked by the real command."""
    directory = shutil.copytree(trained("forest"), tmp_path / "model")
    done = subprocess.run([sys.executable, "-m", "model", "bake", "--model-dir", str(directory)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return directory


@pytest.fixture
def builtin(monkeypatch, baked_dir):
    """Makes the baked copy the function's built-in model directory."""
    monkeypatch.setattr(baked, "DEFAULT_MODEL_DIR", baked_dir)
    return baked_dir


def _plant(directory, marker, keep_record_consistent: bool) -> None:
    """Replaces baked.pkl by a pickle that runs code; optionally rewrites baked.json to match it."""
    (directory / baked.PICKLE_NAME).write_bytes(pickle.dumps(_Planted(marker)))
    if keep_record_consistent:
        record = json.loads((directory / baked.RECORD_NAME).read_text())
        record["sha256"] = sha256_of(directory / baked.PICKLE_NAME)
        (directory / baked.RECORD_NAME).write_text(json.dumps(record))


def _holder(uri: str) -> ModelHolder:
    return ModelHolder(config.Settings.from_env({"MODEL_URI": uri}))


def test_bake_records_the_pickle_and_the_artifact_it_was_verified_from(baked_dir):
    record = json.loads((baked_dir / baked.RECORD_NAME).read_text())
    manifest = json.loads((baked_dir / "manifest.json").read_text())
    assert record["artifact_sha256"] == manifest["artifact"]["sha256"]
    assert record["sha256"] == sha256_of(baked_dir / baked.PICKLE_NAME)
    assert set(record["versions"]) == {"scikit-learn", "numpy", "python"}


def test_bake_refuses_an_artifact_that_fails_the_full_checks(trained, tmp_path):
    directory = shutil.copytree(trained("logreg"), tmp_path / "model")
    with open(directory / "model.skops", "ab") as f:
        f.write(b"\0")
    done = subprocess.run([sys.executable, "-m", "model", "bake", "--model-dir", str(directory)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1 and "SHA-256" in done.stderr
    assert not (directory / baked.PICKLE_NAME).exists()


def test_the_builtin_directory_loads_its_baked_form_and_not_skops(baked_dir):
    # A fresh process, so "skops was never imported" means something.
    probe = f"""
import json, sys
from service import logs
logs.configure("INFO", None, None)
from model import baked
from model.loader import ModelHolder
from service import config
from inference.warmup import warm_up
baked.DEFAULT_MODEL_DIR = __import__("pathlib").Path({str(baked_dir)!r})
model = ModelHolder(config.Settings.from_env({{"MODEL_URI": {str(baked_dir)!r}}}), warm_up=warm_up).get()
print(json.dumps({{"skops": "skops" in sys.modules, "label": model.estimator.predict([{IRIS_ROW}]).tolist()}}))
"""
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    loaded = [json.loads(line) for line in done.stderr.splitlines() + done.stdout.splitlines()
              if '"model_loaded"' in line]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"skops": False, "label": [0]}
    assert loaded[0]["form"] == baked.PICKLE_NAME and loaded[0]["format"] == "skops"


@pytest.mark.parametrize("uri", ["{dir}", "file://{dir}", "{dir}/manifest.json"])
def test_a_baked_form_anywhere_but_the_builtin_directory_is_never_unpickled(baked_dir, tmp_path, uri):
    marker = tmp_path / "pickle-ran"
    _plant(baked_dir, marker, keep_record_consistent=True)  # passes every check but the place
    model = _holder(uri.format(dir=baked_dir)).get()
    assert not marker.exists()
    assert model.estimator.predict([IRIS_ROW]).tolist() == [0]
    # Even asked to, the reader refuses a directory that is not the built-in one.
    assert baked.read(baked_dir, json.loads((baked_dir / "manifest.json").read_text()), None) is None
    assert not marker.exists()


def test_only_a_local_path_to_the_builtin_directory_qualifies():
    assert baked.applies(str(DEFAULT_MODEL_DIR), DEFAULT_MODEL_DIR)
    assert baked.applies(str(DEFAULT_MODEL_DIR / "manifest.json"), DEFAULT_MODEL_DIR / "manifest.json")
    # A download lands in the cache, never in the built-in directory; and were it to, the scheme says no.
    assert not baked.applies("gs://bucket/iris", DEFAULT_MODEL_DIR)
    assert not baked.applies(str(DEFAULT_MODEL_DIR.parent), DEFAULT_MODEL_DIR.parent)


@pytest.mark.parametrize("tamper", ["pickle bytes", "artifact retrained", "library versions", "record", "pickle gone",
                                    "not a pickle"])
def test_a_baked_form_that_fails_a_check_is_ignored_and_the_artifact_loads_the_full_way(builtin, tmp_path, caplog,
                                                                                         tamper):
    marker = tmp_path / "pickle-ran"
    record_path = builtin / baked.RECORD_NAME
    record = json.loads(record_path.read_text())
    if tamper == "pickle bytes":
        _plant(builtin, marker, keep_record_consistent=False)
        reason = "has SHA-256"
    elif tamper == "artifact retrained":
        training.train(builtin, kind="logreg")  # a new artifact, and no new bake
        reason = "another artifact"
    elif tamper == "library versions":
        record["versions"]["scikit-learn"] = "0.0"
        record_path.write_text(json.dumps(record))
        reason = "are running"
    elif tamper == "record":
        record_path.write_text("{not json")
        reason = "does not parse"
    elif tamper == "pickle gone":
        (builtin / baked.PICKLE_NAME).unlink()
        reason = "is missing"
    else:  # consistent with its record, yet no pickle: the shortcut gives way to the full checks
        (builtin / baked.PICKLE_NAME).write_bytes(b"not a pickle")
        record["sha256"] = sha256_of(builtin / baked.PICKLE_NAME)
        record_path.write_text(json.dumps(record))
        reason = "does not unpickle"
    model = _holder(str(builtin)).get()
    assert not marker.exists()
    assert model.format == "skops" and model.estimator.predict([IRIS_ROW]).tolist() == [0]
    ignored = [r for r in caplog.records if getattr(r, "event", None) == "baked_model_ignored"]
    assert ignored and reason in ignored[0].reason


def test_without_a_baked_form_the_builtin_directory_loads_the_full_way(builtin, caplog):
    caplog.set_level(logging.INFO, logger="model")
    (builtin / baked.PICKLE_NAME).unlink()
    (builtin / baked.RECORD_NAME).unlink()
    model = _holder(str(builtin)).get()
    assert model.estimator.predict([IRIS_ROW]).tolist() == [0]
    loaded = [r for r in caplog.records if getattr(r, "event", None) == "model_loaded"]
    assert not hasattr(loaded[0], "form") and not any(getattr(r, "event", None) == "baked_model_ignored"
                                                      for r in caplog.records)

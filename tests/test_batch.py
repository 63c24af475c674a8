"""Batch scoring (`python -m batch`) against a real storage server: sharding across tasks that run as
separate processes, a killed task run again, bad rows, and the failures that stop a task.

Models are fitted in the test session; rows are random, so each one is told apart by its values.
"""

import json
import os
import random
import signal
import subprocess
import sys
import uuid

import numpy as np
import pytest
from google.cloud import storage as gcs_storage

from batch import shards
from batch.__main__ import main as batch_main
from batch.files import InputFile
from batch.lines import batches, newlines_before
from model import publish
from tests.conftest import IRIS_FEATURES, REPO

pytestmark = pytest.mark.timeout(180)


# -- the shard plan and line boundaries, without I/O ------------------------------------------------------


def test_lines_of_every_shard_together_are_the_file_once_whatever_the_cuts():
    rng = random.Random(7)
    for _ in range(2000):
        lines = [b"x" * rng.randint(0, 7) for _ in range(rng.randint(0, 30))]
        data = b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")
        count, block = rng.randint(1, 6), rng.randint(1, 9)
        seen = []
        for k in range(count):
            start, end = len(data) * k // count, len(data) * (k + 1) // count
            for batch in batches(lambda at, size, data=data: data[at:at + size], start, end, rng.randint(1, 4),
                                 at_line_start=k == 0, block_bytes=block):
                seen += batch.lines
        assert seen == (data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n") if data else [])


def test_newlines_before_counts_the_lines_ending_before_an_offset():
    data = b"a\nbb\n\nccc\n"
    assert [newlines_before(lambda at, size: data[at:at + size], k, block_bytes=2) for k in (0, 2, 5, 6, 10)] == [
        0, 1, 2, 3, 4]


def test_plan_spreads_one_large_file_over_every_task_and_names_outputs_by_input():
    files = [InputFile("gs://b/in/day=1/big.jsonl", "day=1/big.jsonl", 1000), InputFile("gs://b/in/s.csv", "s.csv", 10)]

    plan = shards.plan(files, task_count=4, shard_bytes=10_000)

    assert [(s.file.relative, s.start, s.end) for s in plan] == [
        ("day=1/big.jsonl", 0, 250), ("day=1/big.jsonl", 250, 500), ("day=1/big.jsonl", 500, 750),
        ("day=1/big.jsonl", 750, 1000), ("s.csv", 0, 10)]
    assert plan[1].output_name == "day=1/big-00001-of-00004.jsonl"
    assert [s.index for s in shards.for_task(plan, 0, 4)] == [0, 0]  # shard k goes to task k mod 4
    assert len(shards.plan(files, task_count=1, shard_bytes=300)) == 5  # no shard over 300 bytes


def test_plan_refuses_inputs_that_would_write_the_same_outputs():
    files = [InputFile("a.csv", "a.csv", 1), InputFile("a.jsonl", "a.jsonl", 1)]
    with pytest.raises(Exception, match="inputs a.csv and a.jsonl would write the same output files"):
        shards.plan(files, 1, 100)


# -- tasks against the storage server -----------------------------------------------------------------------


def _rows(count: int, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    rows = np.round(rng.uniform([4.3, 2.0, 1.0, 0.1], [7.9, 4.4, 6.9, 2.5], (count, 4)), 6).tolist()
    assert len({tuple(r) for r in rows}) == count
    return rows


def _jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


CSV_ORDER = [3, 1, 0, 2]  # the header names the features in another order than the model's


def _csv(rows) -> str:
    return ",".join(IRIS_FEATURES[j] for j in CSV_ORDER) + "\n" + "".join(
        ",".join(repr(r[j]) for j in CSV_ORDER) + "\n" for r in rows)


def _from_csv_order(values: list) -> tuple:
    """A CSV row's echo (its values in the file's column order) in the model's feature order."""
    return tuple(values[CSV_ORDER.index(j)] for j in range(len(CSV_ORDER)))


def _bucket():
    return gcs_storage.Client(project="test").bucket("data")


def _outputs(prefix: str) -> dict[str, list[dict]]:
    """Output object name (below prefix) -> its lines, parsed."""
    return {b.name[len(prefix):]: [json.loads(line) for line in b.download_as_bytes().decode().splitlines()]
            for b in _bucket().list_blobs(prefix=prefix)}




def _estimator(model_dir):
    import skops.io

    artifact = model_dir / "model.skops"
    return skops.io.load(artifact, trusted=skops.io.get_untrusted_types(file=artifact))


@pytest.fixture
def prefix(storage):
    return f"run-{uuid.uuid4().hex[:8]}/"


def _task(storage, args, index=0, count=1, **env) -> subprocess.Popen:
    full = {**os.environ, "STORAGE_EMULATOR_HOST": storage.url, "CLOUD_RUN_TASK_INDEX": str(index),
            "CLOUD_RUN_TASK_COUNT": str(count), **{k: str(v) for k, v in env.items()}}
    return subprocess.Popen([sys.executable, "-m", "batch", *args], cwd=REPO, env=full, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _log(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_tasks_in_separate_processes_score_every_row_exactly_once(storage, prefix, trained, tmp_path):
    big, small = _rows(3000, 1), _rows(400, 2)
    _bucket().blob(prefix + "in/big.jsonl").upload_from_string(_jsonl(big))
    _bucket().blob(prefix + "in/part/small.csv").upload_from_string(_csv(small))
    _bucket().blob(prefix + "in/_SUCCESS").upload_from_string("a marker, not rows")
    model = trained("forest")
    published = publish.publish(model, f"gs://models/{prefix}forest")  # the model from MODEL_URI=gs://...

    args = [f"gs://data/{prefix}in", f"gs://data/{prefix}out/", "--shard-mb", "0.02", "--batch-size", "500"]
    tasks = [_task(storage, args, k, 3, MODEL_URI=published["pinned_uri"], MODEL_CACHE_DIR=tmp_path / f"cache{k}")
             for k in range(3)]
    finished = [task.communicate(timeout=150) for task in tasks]

    assert [task.returncode for task in tasks] == [0, 0, 0], [err for _, err in finished]
    outputs = _outputs(prefix + "out/")
    # 3400 rows of ~40 bytes in shards of at most 20 KiB: big.jsonl in 6, small.csv in 1, _SUCCESS skipped.
    assert sorted(outputs) == [f"big-{k:05d}-of-00006.jsonl" for k in range(6)] + ["part/small-00000-of-00001.jsonl"]
    scored = [(tuple(line["instance"]), line) for k in range(6) for line in outputs[f"big-{k:05d}-of-00006.jsonl"]]
    scored += [(_from_csv_order(line["instance"]), line) for line in outputs["part/small-00000-of-00001.jsonl"]]
    assert sorted(row for row, _ in scored) == sorted(tuple(r) for r in big + small)
    expected = dict(zip((tuple(r) for r in big + small), _estimator(model).predict(np.array(big + small)).tolist()))
    assert all(line["prediction"] == expected[row] for row, line in scored)
    assert outputs["big-00000-of-00006.jsonl"][0] == {"instance": big[0], "prediction": expected[tuple(big[0])]}
    summaries = [next(e for e in _log(out) if e.get("event") == "batch_summary") for out, _ in finished]
    assert [s["task"] for s in summaries] == [0, 1, 2] and sum(s["rows"] for s in summaries) == 3400
    assert all(s["shards_written"] >= 2 and s["errors"] == 0 for s in summaries)


def test_task_killed_mid_run_and_run_again_leaves_every_row_once(storage, prefix, trained):
    rows = _rows(12000, 3)
    _bucket().blob(prefix + "in/rows.jsonl").upload_from_string(_jsonl(rows))
    args = [f"gs://data/{prefix}in/rows.jsonl", f"gs://data/{prefix}out", "--shard-mb", "0.02", "--batch-size", "100",
            "--progress-s", "0"]
    env = {"MODEL_URI": trained("forest")}

    first = _task(storage, args, **env)
    for line in first.stdout:  # killed as soon as its first shard is written: mid-way through the second
        if '"batch_shard_written"' in line:
            first.send_signal(signal.SIGKILL)
            break
    first.wait(timeout=60)
    partial = _outputs(prefix + "out/")
    retry = _task(storage, args, CLOUD_RUN_TASK_ATTEMPT=1, **env)
    out, err = retry.communicate(timeout=150)

    assert first.returncode == -signal.SIGKILL
    assert 1 <= len(partial) < 24, sorted(partial)  # 12000 rows of ~40 bytes in 20 KiB shards: 24 files
    assert retry.returncode == 0, err
    summary = next(e for e in _log(out) if e.get("event") == "batch_summary")
    assert summary["shards_skipped"] == len(partial) and summary["shards_written"] == 24 - len(partial)
    outputs = _outputs(prefix + "out/")
    assert sorted(outputs) == [f"rows-{k:05d}-of-00024.jsonl" for k in range(24)]
    assert [tuple(line["instance"]) for k in sorted(outputs) for line in outputs[k]] == [tuple(r) for r in rows]


def _in_process(monkeypatch, capsys, args, **env) -> tuple[int, str, list[dict]]:
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    status = batch_main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.err, _log(captured.out)


BAD_JSONL = [
    "[5.1, 3.5, 1.4, 0.2]",
    "[5.1, 3.5, 1.4]",  # row 1
    "",  # a blank line: no row, but it keeps its place
    "not json",  # row 3
    json.dumps(dict(zip(IRIS_FEATURES, [6.7, 3.0, 5.2, 2.3]))),
    '[5.1, "3.5", 1.4, 0.2]',  # row 5
    "[5.1, null, 1.4, 0.2]",  # row 6
] + [json.dumps(r) for r in _rows(20, 4)] + [
    "[5.1, 3.5, 1e39, 0.2]",  # row 27: plain numbers (the bulk reader takes them), one out of range
] + [json.dumps(r) for r in _rows(20, 5)] + [
    '{"sepal length (cm)": 5.1, "petals": 1}',  # row 48, in the file's second shard
    "[6.7, 3.0, 5.2, 2.3]",
]


def test_bad_rows_become_error_lines_naming_their_row_in_the_file(storage, prefix, trained, monkeypatch, capsys):
    _bucket().blob(prefix + "in/rows.jsonl").upload_from_string("\n".join(BAD_JSONL) + "\n")
    args = [f"gs://data/{prefix}in/rows.jsonl", f"gs://data/{prefix}out", "--shard-mb", "0.001", "--batch-size", "8"]

    status, err, log = _in_process(monkeypatch, capsys, args, MODEL_URI=trained("logreg"))

    assert status == 0, err
    lines = [line for name, part in sorted(_outputs(prefix + "out/").items()) for line in part]
    assert len(lines) == len(BAD_JSONL) - 1  # the blank line is no row
    errors = {line["error"].split(" ", 2)[1].rstrip(","): line for line in lines if "error" in line}
    assert sorted(errors, key=int) == ["1", "3", "5", "6", "27", "48"]
    assert errors["1"]["error"] == ("row 1 has 3 values; the model expects 4 features (sepal length (cm), "
                                    "sepal width (cm), petal length (cm), petal width (cm))")
    assert errors["3"] == {"instance": "not json",
                           "error": "row 3 is not a JSON row: malformed JSON: Expecting value at line 1 column 1"}
    assert errors["5"]["error"] == "row 5, feature 1 (sepal width (cm)) must be a number, got string"
    assert "row 6, feature 1 (sepal width (cm)) is missing" in errors["6"]["error"]
    assert errors["27"] == {"instance": [5.1, 3.5, 1e39, 0.2], "error": "row 27, feature 2 (petal length (cm)) is "
                            "larger in magnitude than 3.402823e+38, the largest value accepted"}
    assert errors["48"]["error"].startswith("row 48 has unknown feature(s) 'petals'")
    assert [line["prediction"] for line in lines if "error" not in line][:2] == [0, 2]
    assert lines[-1] == {"instance": [6.7, 3.0, 5.2, 2.3], "prediction": 2}
    assert next(e for e in log if e.get("event") == "batch_summary")["errors"] == 6


def test_csv_cells_are_converted_and_bad_cells_become_error_lines(storage, prefix, trained, monkeypatch, capsys):
    good = _rows(30, 5)
    text = _csv(good) + "0.2,3.5,,1.4\n0.2,abc,5.1,1.4\n0.2,3.5\n"  # rows 30 (empty cell), 31, 32
    _bucket().blob(prefix + "in/rows.csv").upload_from_string(text)

    status, err, _ = _in_process(monkeypatch, capsys, [f"gs://data/{prefix}in", f"gs://data/{prefix}out"],
                                 MODEL_URI=trained("logreg"))

    assert status == 0, err
    lines = _outputs(prefix + "out/")["rows-00000-of-00001.jsonl"]
    assert [_from_csv_order(line["instance"]) for line in lines[:30]] == [tuple(r) for r in good]
    assert lines[30]["instance"] == [0.2, 3.5, None, 1.4]
    assert lines[30]["error"].startswith("row 30, feature 0 (sepal length (cm)) is missing")
    assert lines[31]["instance"] == [0.2, "abc", 5.1, 1.4]
    assert lines[31]["error"] == "row 31, feature 1 (sepal width (cm)) must be a number, got string"
    assert lines[32] == {"instance": "0.2,3.5", "error": "row 32 has 2 values; the header names 4 columns"}


def test_local_paths_and_the_spellings_of_numbers_echo_as_json(trained, tmp_path, monkeypatch, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.jsonl").write_bytes(b"[5.1, 3.5, 1.4, 0.2]\r\n[6.7, 3.0, 5.2, 2.3]\r\n")
    (tmp_path / "in" / "rows2.csv").write_text(",".join(IRIS_FEATURES) + "\n5.1,3.5,1.4,.2\n+6.7,3.,5.2,2.3\n")

    status, err, _ = _in_process(monkeypatch, capsys, [tmp_path / "in", tmp_path / "out"], MODEL_URI=trained("logreg"))

    assert status == 0, err
    out = {p.name: p.read_text().splitlines() for p in (tmp_path / "out").iterdir()}
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir()} == {0o644}  # not a temp file's 0600
    assert out["rows-00000-of-00001.jsonl"] == ['{"instance":[5.1, 3.5, 1.4, 0.2],"prediction":0}',
                                               '{"instance":[6.7, 3.0, 5.2, 2.3],"prediction":2}']
    assert out["rows2-00000-of-00001.jsonl"] == ['{"instance":[5.1, 3.5, 1.4, 0.2],"prediction":0}',
                                                '{"instance":[6.7, 3.0, 5.2, 2.3],"prediction":2}']


@pytest.mark.parametrize("where, message", [
    ("gs://data/{prefix}nothing", "input gs://data/{prefix}nothing does not exist: no object"),
    ("gs://no-such-bucket/in", "input gs://no-such-bucket/in: bucket gs://no-such-bucket does not exist"),
])
def test_missing_input_fails_the_task_naming_it(storage, prefix, trained, where, message):
    task = _task(storage, [where.format(prefix=prefix), f"gs://data/{prefix}out"], MODEL_URI=trained("logreg"))
    _, err = task.communicate(timeout=60)

    assert task.returncode == 1
    assert err.startswith(f"batch: {message.format(prefix=prefix)}"), err
    assert list(_bucket().list_blobs(prefix=prefix)) == []


def test_model_that_cannot_load_fails_the_task_naming_the_cause(storage, prefix, trained):
    _bucket().blob(prefix + "in/rows.jsonl").upload_from_string(_jsonl(_rows(3, 7)))
    published = publish.publish(trained("logreg"), f"gs://models/{prefix}iris")
    storage.rot("models", f"{prefix}iris/model.skops", b"not a model")
    args = [f"gs://data/{prefix}in", f"gs://data/{prefix}out"]

    rotten = _task(storage, args, MODEL_URI=published["uri"], MODEL_FETCH_TIMEOUT_S=5)
    missing = _task(storage, args, MODEL_URI=f"gs://models/{prefix}missing", MODEL_FETCH_TIMEOUT_S=5)
    (_, rotten_err), (_, missing_err) = rotten.communicate(timeout=60), missing.communicate(timeout=60)

    assert rotten.returncode == 1 and "batch: the model cannot be loaded: " in rotten_err
    assert "checksum" in rotten_err or "SHA-256" in rotten_err
    assert missing.returncode == 1 and f"gs://models/{prefix}missing/manifest.json" in missing_err
    assert list(_bucket().list_blobs(prefix=prefix + "out")) == []


def test_csv_header_that_does_not_name_the_features_fails_the_task(storage, prefix, trained, monkeypatch, capsys):
    _bucket().blob(prefix + "in/rows.csv").upload_from_string("a,b,c,d\n1,2,3,4\n")

    status, err, _ = _in_process(monkeypatch, capsys, [f"gs://data/{prefix}in", f"gs://data/{prefix}out"],
                                 MODEL_URI=trained("logreg"))

    assert status == 1
    assert "rows.csv: the CSV header must name the model's features" in err and "unknown 'a', 'b'" in err


@pytest.mark.parametrize("args, env, message", [
    (["in"], {}, "the following arguments are required: OUTPUT"),
    (["in", "out", "--batch-size", "0"], {}, "--batch-size/BATCH_SIZE='0' must be at least 1"),
    (["in", "out", "--format", "xml"], {}, "is not one of auto, jsonl, csv"),
    (["in", "out"], {"CLOUD_RUN_TASK_INDEX": "3", "CLOUD_RUN_TASK_COUNT": "3"}, "must be below CLOUD_RUN_TASK_COUNT"),
])
def test_bad_arguments_exit_2_naming_them(monkeypatch, capsys, args, env, message):
    status, err, _ = _in_process(monkeypatch, capsys, args, **env)
    assert status == 2 and message in err


# -- the models users bring: a DataFrame pipeline, a text classifier, a regressor with missing values --------


@pytest.fixture(scope="module")
def user_models(tmp_path_factory):
    """name -> (model directory packaged by `python -m model package`, the fitted source model)."""
    from model import package
    from tests import models

    tmp = tmp_path_factory.mktemp("user-models")
    packaged = {}
    for name, fitted in (("churn", models.churn_pipeline()), ("spam", models.text_classifier()),
                         ("prices", models.nan_regressor())):
        source = models.dump(fitted, tmp / "source", name=name)
        package.package(source, tmp / name, sample=models.write_sample(fitted, tmp / f"{name}.jsonl"), allow_pickle=True)
        packaged[name] = (tmp / name, fitted)
    return packaged


@pytest.mark.parametrize("name, suffix", [("churn", "csv"), ("churn", "jsonl"), ("prices", "csv"), ("spam", "jsonl")])
def test_models_users_bring_score_their_own_rows_as_the_source_model_answers(user_models, name, suffix, tmp_path,
                                                                          monkeypatch, capsys):
    from tests import models

    model_dir, fitted = user_models[name]
    # pandas writes what users have: CSV with empty cells for missing values and True/False; JSON records.
    rows = models.write_sample(fitted, tmp_path / f"rows.{suffix}")

    status, err, _ = _in_process(monkeypatch, capsys, [rows, tmp_path / "out"], MODEL_URI=model_dir)

    assert status == 0, err
    lines = [json.loads(line) for line in (tmp_path / "out" / "rows-00000-of-00001.jsonl").read_text().splitlines()]
    assert [line.get("error") for line in lines] == [None] * len(lines)
    assert [line["prediction"] for line in lines] == fitted.estimator.predict(fitted.rows).tolist()


def test_csv_cells_of_a_dataframe_model_are_typed_and_the_ones_it_cannot_take_are_error_lines(
        user_models, tmp_path, monkeypatch, capsys):
    import pandas as pd

    model_dir, fitted = user_models["churn"]
    (tmp_path / "rows.csv").write_text("senior,payment,contract,monthly_charges,tenure_months\n"
                                       "false,card,one-year,,12\nTRUE,card,lifetime,70.5,3\nmaybe,bank,two-year,20,1\n"
                                       "0,,month-to-month,20,1.5\n")

    status, err, _ = _in_process(monkeypatch, capsys, [tmp_path / "rows.csv", tmp_path / "out"], MODEL_URI=model_dir)

    assert status == 0, err
    lines = [json.loads(line) for line in (tmp_path / "out" / "rows-00000-of-00001.jsonl").read_text().splitlines()]
    good = pd.DataFrame({"tenure_months": [12.0, 1.5], "monthly_charges": [float("nan"), 20.0],
                         "contract": ["one-year", "month-to-month"], "payment": ["card", None], "senior": [False, False]})
    assert [lines[0], lines[3]] == [
        {"instance": [False, "card", "one-year", None, 12.0], "prediction": fitted.estimator.predict(good)[0]},
        {"instance": [False, None, "month-to-month", 20.0, 1.5], "prediction": fitted.estimator.predict(good)[1]}]
    assert lines[1]["error"].startswith("row 1, feature 2 (contract) is 'lifetime', a category the model does not know")
    assert lines[2] == {"instance": ["maybe", "bank", "two-year", 20.0, 1.0],
                        "error": "row 2, feature 4 (senior) must be true or false, got string"}


def test_a_passed_through_bool_column_the_model_cannot_type_takes_true_false_cells(tmp_path, monkeypatch, capsys):
    """Packaged without a sample, the churn model's boolean column is a number nothing in the model
    types (passed through untouched); pandas' True/False cells score as the JSON booleans the function
    takes there do, as 1/0."""
    from model import package
    from tests import models

    fitted = models.churn_pipeline()
    source = models.dump(fitted, tmp_path / "source", name="churn")
    report = package.package(source, tmp_path / "churn", allow_pickle=True)
    senior = next(f for f in report.schema.features if f.name == "senior")
    assert (senior.kind, senior.kind_source) == ("number", "default")
    rows = models.write_sample(fitted, tmp_path / "rows.csv")
    assert "True" in rows.read_text()

    status, err, _ = _in_process(monkeypatch, capsys, [rows, tmp_path / "out"], MODEL_URI=tmp_path / "churn")

    assert status == 0, err
    lines = [json.loads(line) for line in (tmp_path / "out" / "rows-00000-of-00001.jsonl").read_text().splitlines()]
    assert [line.get("error") for line in lines] == [None] * len(lines)
    assert [line["prediction"] for line in lines] == fitted.estimator.predict(fitted.rows).tolist()

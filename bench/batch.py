"""`python -m bench.batch`: one batch-scoring task against the in-process floor, in rows per second.

For each model (iris: StandardScaler + LogisticRegression, RandomForest(100); both from `python -m model
train`) and each format (JSON lines, CSV), it writes ROWS random iris-like rows to local files, then:
- runs one task, `python -m batch IN OUT`, as a job's task runs it (a fresh process, MODEL_URI at the
  model directory, the default batch size), and reads its log: rows/s while scoring (shards opened,
  read, parsed, validated, predicted, written and renamed into place: local disk I/O included;
  process start and model load excluded, they are reported apart), and rows/s end to end;
- runs the floor in a fresh process: `model.predict` on the same rows, already in memory as one float
  matrix, in calls of the same batch size (and once on all rows, for reference), with the same fitted
  estimator loaded by the same loader.
The ratio is task rows/s while scoring over floor rows/s. Every task's labels are checked against
the floor's. Both run with one BLAS thread; `--cpus 1` (the default) pins both to one CPU, as a
Cloud Run job task with JOB_CPU=1 gets; `--cpus 2` lets the task's threads use two.
Median of --rounds (default 3), best in brackets. Cloud Storage is not included: the storage emulator
serves one request at a time from Python, which would measure the emulator.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

from bench.plan import REPO_DIR, RESULTS_DIR, THREAD_ENV

FORMATS = ("jsonl", "csv")
MODELS = ("logreg", "forest")
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def _rows(count: int, seed: int = 0):
    import numpy as np

    # Iris-like values with one decimal, as the data set writes them.
    low, high = np.array([4.3, 2.0, 1.0, 0.1]), np.array([7.9, 4.4, 6.9, 2.5])
    return np.round(np.random.default_rng(seed).uniform(low, high, (count, 4)), 1)


def _write_inputs(matrix, directory: pathlib.Path) -> dict[str, pathlib.Path]:
    directory.mkdir(parents=True, exist_ok=True)
    text = [", ".join(map(repr, row)) for row in matrix.tolist()]
    paths = {"jsonl": directory / "rows.jsonl", "csv": directory / "rows.csv"}
    paths["jsonl"].write_text("".join(f"[{row}]\n" for row in text))
    paths["csv"].write_text(",".join(FEATURES) + "\n" + "".join(row.replace(" ", "") + "\n" for row in text))
    return paths


def _pinned(command: list[str], cpus: int) -> list[str]:
    return ["taskset", "-c", ",".join(str(c) for c in range(cpus)), *command]


def _run_task(model_dir, source, output, cpus: int) -> dict:
    env = {**os.environ, **THREAD_ENV, "MODEL_URI": str(model_dir), "BATCH_PROGRESS_S": "3600"}
    started = time.perf_counter()
    done = subprocess.run(_pinned([sys.executable, "-m", "batch", str(source), str(output)], cpus), cwd=REPO_DIR,
                          env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"batch task failed: {done.stderr}")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    shards = [e for e in events if e.get("event") == "batch_shard_written"]
    loaded = next(e for e in events if e.get("event") == "model_loaded")
    rows = sum(e["rows"] for e in shards)
    scoring = sum(e["seconds"] for e in shards)
    cpu = sum(e["cpu_seconds"] for e in shards)
    return {"rows": rows, "scoring_s": scoring, "rows_per_s": rows / scoring, "wall_s": wall,
            "rows_per_cpu_s": rows / cpu,
            "end_to_end_rows_per_s": rows / wall, "model_load_s": loaded["seconds"]}


def _run_floor(model_dir, rows_path, batch_size: int, cpus: int) -> dict:
    command = [sys.executable, "-m", "bench.batch", "--floor", str(model_dir), str(rows_path), str(batch_size)]
    done = subprocess.run(_pinned(command, cpus), cwd=REPO_DIR, env={**os.environ, **THREAD_ENV},
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def floor(model_dir: str, rows_path: str, batch_size: int) -> None:
    """The floor, in this process: prints one JSON line (and writes the labels beside the rows)."""
    import numpy as np

    from inference.warmup import warm_up
    from model.loader import ModelHolder
    from service.config import Settings

    model = ModelHolder(Settings.from_env({"MODEL_URI": model_dir}), warm_up=warm_up).get()
    matrix = np.load(rows_path)
    predict = model.estimator.predict
    started, cpu = time.perf_counter(), time.process_time()
    labels = [predict(matrix[i:i + batch_size]) for i in range(0, len(matrix), batch_size)]
    batched, cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    predict(matrix)
    whole = time.perf_counter() - started
    np.save(pathlib.Path(rows_path).with_suffix(".labels.npy"), np.concatenate(labels))
    print(json.dumps({"rows": len(matrix), "rows_per_s": len(matrix) / batched, "seconds": batched,
                      "rows_per_cpu_s": len(matrix) / cpu,
                      "one_call_rows_per_s": len(matrix) / whole}))


def _labels_match(output_dir: pathlib.Path, expected) -> bool:
    """The task's predictions, in input order, are the floor's labels."""
    got = []
    for path in sorted(output_dir.glob("*.jsonl")):
        got += [line.rsplit(b'"prediction":', 1)[1][:-1] for line in path.read_bytes().splitlines()]
    return got == [str(int(label)).encode() for label in expected]


def _median_best(values: list[float]) -> dict:
    return {"median": statistics.median(values), "best": max(values), "all": values}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=1, choices=(1, 2))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--json", type=pathlib.Path, default=RESULTS_DIR / "batch.json")
    args = parser.parse_args(argv)
    import numpy as np

    from batch.config import OPTIONS

    batch_size = int(next(default for flag, _, default, _ in OPTIONS if flag == "--batch-size"))
    work = RESULTS_DIR / "work" / "batch"
    matrix = _rows(args.rows)
    rows_path = work / "rows.npy"
    inputs = _write_inputs(matrix, work / "in")
    np.save(rows_path, matrix)
    results = {}
    for model_name in args.models.split(","):
        model_dir = work / f"model-{model_name}"
        subprocess.run([sys.executable, "-m", "model", "train", "--estimator", model_name, "--out", str(model_dir)],
                       cwd=REPO_DIR, check=True, capture_output=True)
        for fmt in args.formats.split(","):
            tasks, floors, correct = [], [], True
            for _ in range(args.rounds):
                output = work / f"out-{model_name}-{fmt}"
                for old in output.glob("*"):
                    old.unlink()
                tasks.append(_run_task(model_dir, inputs[fmt], output, args.cpus))
                floors.append(_run_floor(model_dir, rows_path, batch_size, args.cpus))
                correct = correct and _labels_match(output, np.load(rows_path.with_suffix(".labels.npy")))
            ratios = [t["rows_per_s"] / f["rows_per_s"] for t, f in zip(tasks, floors)]
            cpu_ratios = [t["rows_per_cpu_s"] / f["rows_per_cpu_s"] for t, f in zip(tasks, floors)]
            results[f"{model_name}/{fmt}"] = {
                "task_rows_per_s": _median_best([t["rows_per_s"] for t in tasks]),
                "task_end_to_end_rows_per_s": _median_best([t["end_to_end_rows_per_s"] for t in tasks]),
                "model_load_s": statistics.median(t["model_load_s"] for t in tasks),
                "floor_rows_per_s": _median_best([f["rows_per_s"] for f in floors]),
                "floor_one_call_rows_per_s": _median_best([f["one_call_rows_per_s"] for f in floors]),
                "task_rows_per_cpu_s": _median_best([t["rows_per_cpu_s"] for t in tasks]),
                "floor_rows_per_cpu_s": _median_best([f["rows_per_cpu_s"] for f in floors]),
                "ratio": _median_best(ratios), "cpu_ratio": _median_best(cpu_ratios), "correct": correct,
                "rows": tasks[0]["rows"]}
            cell = results[f"{model_name}/{fmt}"]
            print(f"{model_name:<7} {fmt:<6} task {cell['task_rows_per_s']['median']:>10,.0f} rows/s "
                  f"(end to end {cell['task_end_to_end_rows_per_s']['median']:,.0f}), floor "
                  f"{cell['floor_rows_per_s']['median']:>10,.0f} rows/s: {cell['ratio']['median']:.2f}x "
                  f"(best {cell['ratio']['best']:.2f}x); per CPU-second {cell['cpu_ratio']['median']:.2f}x"
                  f"{'' if correct else '  WRONG LABELS'}", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"command": "python -m bench.batch " + " ".join(argv), "rows": args.rows,
                                     "batch_size": batch_size, "cpus": args.cpus, "rounds": args.rounds,
                                     "results": results}, indent=2) + "\n")
    return 0 if all(cell["correct"] for cell in results.values()) else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--floor"]:
        floor(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(main(sys.argv[1:]))

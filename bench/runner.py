"""The rounds: every system and model measured in turn, the order rotated each round.

Rotating the order spreads drift in the machine's speed over all systems alike; the noise probe before
and after each round records how busy the machine was. A system that fails in a round is recorded
with its error, and the run goes on.
"""

import functools
import json
import os
import pathlib
import subprocess
import time

from bench import loadgen, probe, systems
from bench.fit import ModelFiles
from bench.plan import BATCH_ROWS, CONCURRENCY, REPO_DIR, SERVER_CPU, THREAD_ENV, Plan
from bench.server import Server, ServerFailed


def _write(path: pathlib.Path, data: bytes) -> pathlib.Path:
    path.write_bytes(data)
    return path


def measure_server(system: str, model: ModelFiles, plan: Plan, bins: dict, work: pathlib.Path) -> dict:
    launch = systems.launch(system, model, work, bins[systems.venv_for(system, model)])
    tag = f"{system}-{model.name}"
    row_file = _write(work / f"{tag}-row.json", launch.row_body)
    batch_file = _write(work / f"{tag}-batch.json", launch.batch_body)
    url = f"http://127.0.0.1:{launch.port}{launch.path}"
    server = Server(launch, work / "logs" / f"{tag}.log")
    try:
        expected_row = [model.expected_row]
        metrics = server.start(expected_row, plan.cold_start_timeout_s)
        checks = [server.check(launch.row_body, expected_row), server.check(launch.batch_body, model.expected_batch)]
        ready = server.memory()
        if plan.warmup_seconds:
            loadgen.run(url, row_file, CONCURRENCY, plan.warmup_seconds, plan.wrk_timeout_s)
        c1 = loadgen.run(url, row_file, 1, plan.load_seconds, plan.wrk_timeout_s)
        cpu_before = server.cpu_seconds()
        c16 = loadgen.run(url, row_file, CONCURRENCY, plan.load_seconds, plan.wrk_timeout_s)
        cpu_c16 = server.cpu_seconds() - cpu_before
        batch = loadgen.run(url, batch_file, CONCURRENCY, plan.load_seconds, plan.wrk_timeout_s)
        checks += [server.check(launch.row_body, expected_row), server.check(launch.batch_body, model.expected_batch)]
        after = server.memory()
    finally:
        server.stop()
    metrics.update({
        "p50_ms": c1["p50_ms"], "p99_ms": c1["p99_ms"], "rps_c1": c1["rps"],
        "rps_c16": c16["rps"], "p50_c16_ms": c16["p50_ms"], "p99_c16_ms": c16["p99_ms"],
        "cpu_ms_per_req_c16": cpu_c16 * 1000 / max(1, c16["requests"]),
        "batch_rows_per_s": batch["rps"] * BATCH_ROWS, "batch_p50_ms": batch["p50_ms"],
        "rss_mb": after["rss_mb"], "pss_mb": after["pss_mb"], "rss_ready_mb": ready["rss_mb"],
        "pss_ready_mb": ready["pss_mb"],
        "processes": after["processes"],
        "load_errors": c1["errors"] + c16["errors"] + batch["errors"],
        "correct": all(checks),
    })
    return metrics


def measure_floor(model: ModelFiles, plan: Plan, bin_dir: pathlib.Path, work: pathlib.Path) -> dict:
    rows = _write(work / f"floor-{model.name}-rows.json",
                  json.dumps({"row": model.row, "batch": model.batch}).encode())
    cmd = ["taskset", "-c", str(SERVER_CPU), str(bin_dir / "python"), "-m", "bench.floor",
           str(model.joblib_path), str(rows), str(plan.floor_seconds)]
    env = {**os.environ, **THREAD_ENV}
    started = time.perf_counter()
    with subprocess.Popen(cmd, cwd=REPO_DIR, env=env, stdout=subprocess.PIPE, text=True) as proc:
        first = proc.stdout.readline()
        cold = time.perf_counter() - started
        timings = proc.stdout.readline()
        proc.wait(timeout=60)
    if not first.startswith("ready ") or not timings:
        raise ServerFailed(f"floor process printed {first!r}")
    metrics = json.loads(timings)
    metrics.update({"cold_start_s": cold, "load_errors": 0,
                    "correct": json.loads(first.split(" ", 1)[1]) == [model.expected_row]})
    return metrics


def _rotated(items: list, by: int) -> list:
    by %= len(items)
    return items[by:] + items[:by]


def run_rounds(models: list[ModelFiles], names: list[str], plan: Plan, bins: dict,
               work: pathlib.Path, log=print) -> list[dict]:
    (work / "logs").mkdir(parents=True, exist_ok=True)
    servers = [name for name in names if name != systems.FLOOR]
    if plan.prime:
        # Untimed: warms the page cache and .pyc files for every system alike, once per system, venv it
        # runs from and kind of model (a DataFrame model imports pandas).
        primed = set()
        for model in models:
            for name in servers:
                key = (name, systems.venv_for(name, model), model.layout)
                if key not in primed:
                    primed.add(key)
                    log(f"priming {name} ({model.name})")
                    _safe(functools.partial(measure_server, name, model, _prime_plan(plan), bins, work), log)
    rounds = []
    for index in range(plan.rounds):
        record = {"index": index, "probe_before": probe.measure(), "runs": []}
        for model in _rotated(models, index):
            for name in _rotated(names, index):
                log(f"round {index + 1}/{plan.rounds}: {name} {model.name}")
                if name == systems.FLOOR:
                    bin_dir = bins[systems.venv_for(name, model)]
                    result = _safe(functools.partial(measure_floor, model, plan, bin_dir, work), log)
                else:
                    result = _safe(functools.partial(measure_server, name, model, plan, bins, work), log)
                record["runs"].append({"system": name, "model": model.name, **result})
        record["probe_after"] = probe.measure()
        rounds.append(record)
    return rounds


def _prime_plan(plan: Plan) -> Plan:
    return Plan(rounds=1, load_seconds=1, warmup_seconds=0, floor_seconds=0.1, prime=False,
                cold_start_timeout_s=plan.cold_start_timeout_s)


def _safe(measure, log) -> dict:
    try:
        return {"ok": True, "metrics": measure()}
    except (ServerFailed, loadgen.LoadFailed, OSError, subprocess.SubprocessError) as error:
        log(f"  failed: {error}")
        return {"ok": False, "error": str(error)}

"""`python -m bench [--quick]`: fit, install peers, measure every system, print, write JSON and SVG.

Every flag has an env var (BENCH_<FLAG>) and a default; see `python -m bench --help`.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import shlex
import subprocess
import sys

from bench import chart, fit, plan, report, runner, systems, venvs


def _args(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", default=env("BENCH_QUICK") == "1",
                        help="one short round (seconds): checks the harness, not the figures")
    parser.add_argument("--rounds", type=int, default=env("BENCH_ROUNDS"), help="rounds (full: 3)")
    parser.add_argument("--seconds", type=int, default=env("BENCH_SECONDS"), help="each wrk run (full: 5)")
    parser.add_argument("--models", default=env("BENCH_MODELS", ",".join(plan.MODELS)))
    parser.add_argument("--systems", default=env("BENCH_SYSTEMS", ",".join([*systems.SERVERS, systems.FLOOR])))
    parser.add_argument("--json", type=pathlib.Path, default=env("BENCH_JSON", plan.RESULTS_DIR / "latest.json"))
    parser.add_argument("--chart", type=pathlib.Path, default=env("BENCH_CHART", plan.RESULTS_DIR / "latest.svg"))
    return parser.parse_args(argv)


def _plan(args: argparse.Namespace) -> plan.Plan:
    base = plan.QUICK if args.quick else plan.FULL
    return plan.Plan(rounds=int(args.rounds or base.rounds), load_seconds=int(args.seconds or base.load_seconds),
                     warmup_seconds=base.warmup_seconds, floor_seconds=base.floor_seconds, prime=base.prime)


def _machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    wrk = subprocess.run(["wrk", "--version"], check=False, capture_output=True, text=True).stdout.split("[")[0].strip()
    git = ["git", "-C", str(plan.REPO_DIR)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], check=False,
                           capture_output=True, text=True)
    return {"commit": commit.stdout.strip() + ("+changes" if dirty.stdout.strip() else ""),
            "cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "wrk": wrk, "server_cpu": plan.SERVER_CPU, "client_cpu": plan.CLIENT_CPU}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    args = _args(argv)
    run_plan = _plan(args)
    names = [s for s in args.systems.split(",") if s]
    model_names = [m for m in args.models.split(",") if m]
    work = plan.RESULTS_DIR / "work"
    work.mkdir(parents=True, exist_ok=True)
    os.sched_setaffinity(0, {plan.CLIENT_CPU})  # the harness shares the load generator's CPU
    # Our function's venv builds its app copies (fit.py), so it comes first.
    bins = {systems.OURS: venvs.ensure(systems.OURS, _log)}
    with_ours = any(s in names for s in systems.OWN)
    models = [fit.prepare(name, work, with_ours=with_ours, ours_python=bins[systems.OURS] / "python")
              for name in model_names]
    if with_ours and any(m.ours_dir is None for m in models):
        _log("`python -m model train` is not available yet: measuring without our function")
        names = [s for s in names if s not in systems.OWN]
    # The floor runs in our function's venv (the same production stack, minus the server), as does
    # our function with its model named by MODEL_URI (systems.venv_for).
    needed = {systems.venv_for(name, model) for name in names for model in models}
    bins.update({name: venvs.ensure(name, _log) for name in venvs.REQUIREMENTS if name in needed})
    rounds = runner.run_rounds(models, names, run_plan, bins, work, _log)
    summary = report.aggregate(rounds)
    found = report.targets(summary, model_names)
    command = "python -m bench " + shlex.join(argv)
    result = {
        "command": command.strip(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "plan": run_plan.__dict__, "machine": _machine(), "systems": names, "models": model_names,
        "labels": {name: systems.LABELS[name] for name in names},
        "summary": summary, "targets": found, "rounds": rounds,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    probes = [r[k]["best_ms"] for r in rounds for k in ("probe_before", "probe_after")]
    pressure = [r[k]["cpu_pressure"] or 0.0 for r in rounds for k in ("probe_before", "probe_after")]
    chart.write_result(args.chart, result)
    print(report.table(summary, model_names, names))
    print(f"\nmedian (best) of {run_plan.rounds} rounds; noise probe {min(probes):.1f}-{max(probes):.1f} ms "
          f"(quiet ~10 ms); CPU pressure (PSI some avg10) {min(pressure):.0f}-{max(pressure):.0f}% (quiet: ~0)")
    if found:
        print("\nTargets (ours / best peer, medians):\n" + report.target_lines(found))
    print(f"\nJSON: {args.json}\nchart: {args.chart}")
    failed = [f"{s}/{m}" for s, ms in summary.items() for m, c in ms.items() if c["failures"] or not c["correct"]]
    if failed:
        _log(f"failed or wrong answers: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

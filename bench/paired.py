"""Cold start and memory only, systems started back to back: `python -m bench.paired [--model forest]`.

On a busy machine a full run's cold starts drift with the load between one system's turn and the
next. Here each round starts every system once in a row (the order reversed every other round), so
systems compared within a round met about the same load; each start is timed to its first correct
prediction and its process tree's PSS and RSS are read after one more request. Same systems,
models and launch as `python -m bench`; no load generator.
"""

import argparse
import json
import pathlib
import statistics
import sys

from bench import fit, plan, probe, systems, venvs
from bench.server import Server


def _start(system: str, model: fit.ModelFiles, work, bins: dict) -> dict:
    launch = systems.launch(system, model, work, bins[systems.venv_for(system, model)])
    server = Server(launch, work / "logs" / f"paired-{system}-{model.name}.log")
    try:
        timings = server.start([model.expected_row], plan.FULL.cold_start_timeout_s)
        if not server.check(launch.row_body, [model.expected_row]):
            raise SystemExit(f"{system} answered wrongly")
        return {**timings, **server.memory()}
    finally:
        server.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.paired", description=__doc__)
    parser.add_argument("--model", choices=plan.MODELS, default="forest")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--systems", default=",".join((systems.OURS, systems.OURS_URI, systems.FASTAPI)))
    parser.add_argument("--json", type=pathlib.Path, help="every start (default: results/paired-MODEL.json)")
    args = parser.parse_args(argv)
    names = [name for name in args.systems.split(",") if name]
    work = plan.RESULTS_DIR / "work"
    (work / "logs").mkdir(parents=True, exist_ok=True)
    bins = {systems.OURS: venvs.ensure(systems.OURS)}  # first: it builds the app copy (fit.py)
    model = fit.prepare(args.model, work, ours_python=bins[systems.OURS] / "python")
    needed = {systems.venv_for(name, model) for name in names}
    bins.update({name: venvs.ensure(name) for name in venvs.REQUIREMENTS if name in needed})
    runs: dict[str, list[dict]] = {name: [] for name in names}
    probes = [probe.measure()]
    for index in range(args.rounds):
        for name in names if index % 2 == 0 else names[::-1]:
            runs[name].append(_start(name, model, work, bins))
        probes.append(probe.measure())
    summary = {name: {key: statistics.median(r[key] for r in results) for key in ("cold_start_s", "pss_mb", "rss_mb")}
               for name, results in runs.items()}
    for name, medians in summary.items():
        print(f"{systems.LABELS[name]:<40} cold start {medians['cold_start_s']:.3f} s   PSS {medians['pss_mb']:.1f} MB"
              f"   RSS {medians['rss_mb']:.1f} MB")
    print(f"medians of {args.rounds} rounds, {args.model}; noise probe {min(p['best_ms'] for p in probes):.1f}-"
          f"{max(p['best_ms'] for p in probes):.1f} ms, CPU pressure {min(p['cpu_pressure'] or 0 for p in probes):.0f}-"
          f"{max(p['cpu_pressure'] or 0 for p in probes):.0f}%")
    out = args.json or plan.RESULTS_DIR / f"paired-{args.model}.json"
    out.write_text(json.dumps({"model": args.model, "summary": summary, "runs": runs, "probes": probes}, indent=2) + "\n")
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

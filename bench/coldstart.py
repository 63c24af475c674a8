"""Where our function's cold start goes: `python -m bench.coldstart [--model forest|logreg]`.

Starts our function as the benchmark does (CPU 0, image settings), with `-X importtime` on, and
prints the timeline (spawn -> port open -> model loaded -> first correct prediction) and the
top-level imports by cumulative time, in the master (before the port opens) and in the worker
(during the background model load). Needs the model files of an earlier `python -m bench` run.
"""

import argparse
import json
import re
import sys

from bench import fit, plan, systems, venvs
from bench.server import Server

_IMPORT = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def _imports(log: str) -> list[tuple[str, int, int]]:
    """Top-level imports (name, cumulative us, position) in the order Python reported them."""
    found = []
    for position, line in enumerate(log.splitlines()):
        match = _IMPORT.match(line)
        if match and len(match.group(3)) == 1:  # one space of indent: imported by the program itself
            found.append((match.group(4), int(match.group(2)), position))
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__)
    parser.add_argument("--model", choices=plan.MODELS, default="forest")
    parser.add_argument("--system", choices=(systems.OURS, systems.OURS_URI), default=systems.OURS,
                        help="ours: the built-in model, as the image serves it; ours-uri: the same model via MODEL_URI")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    work = plan.RESULTS_DIR / "work"
    (work / "logs").mkdir(parents=True, exist_ok=True)
    bin_dir = venvs.ensure(systems.OURS)
    model = fit.prepare(args.model, work, ours_python=bin_dir / "python")
    launch = systems.launch(args.system, model, work, bin_dir)
    launch.env["PYTHONPROFILEIMPORTTIME"] = "1"
    log_path = work / "logs" / f"coldstart-{args.model}.log"
    log_path.write_bytes(b"")
    server = Server(launch, log_path)
    try:
        timings = server.start([model.expected_row], plan.FULL.cold_start_timeout_s)
        memory = server.memory()
    finally:
        server.stop()
    text = log_path.read_text()
    loaded = [json.loads(line) for line in text.splitlines() if line.startswith("{") and "model_loaded" in line]
    print(f"spawn -> port bound         {timings['port_open_s']:.3f} s")
    if loaded:
        startup = loaded[0]["startup"]
        steps = ", ".join(f"{k[:-2]} {v:.3f}" for k, v in startup.items() if k not in ("total_s", "since_server_start_s"))
        print(f"model load (in the worker)  {startup['total_s']:.3f} s ({steps}; form: {loaded[0].get('form', 'artifact')})")
    print(f"spawn -> first response     {timings['first_response_s']:.3f} s")
    print(f"spawn -> first prediction   {timings['cold_start_s']:.3f} s")
    print(f"memory: RSS {memory['rss_mb']:.0f} MB, PSS {memory['pss_mb']:.0f} MB, {memory['processes']} processes")
    ranked = sorted(_imports(text), key=lambda item: -item[1])[: args.top]
    print(f"\ntop-level imports by cumulative time (-X importtime; log: {log_path}):")
    for name, micros, _ in ranked:
        print(f"  {micros / 1000:8.1f} ms  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

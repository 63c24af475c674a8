"""Load from Debian's `wrk`, pinned to the client CPU, bounded by -d and --timeout."""

import json
import os
import pathlib
import subprocess

from bench.plan import BENCH_DIR, CLIENT_CPU

_SCRIPT = BENCH_DIR / "post.lua"
_MARK = "BENCH_JSON "


class LoadFailed(RuntimeError):
    """wrk did not run or printed no figures."""


def run(url: str, body_file: pathlib.Path, connections: int, seconds: int, timeout_s: int) -> dict:
    """One wrk run with one thread; returns requests/s, latency percentiles (ms) and error counts."""
    cmd = ["taskset", "-c", str(CLIENT_CPU), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
           f"--timeout={timeout_s}s", "-s", str(_SCRIPT), url]
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file)}
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=seconds + timeout_s + 30)
    lines = [line for line in done.stdout.splitlines() if line.startswith(_MARK)]
    if done.returncode != 0 or not lines:
        raise LoadFailed(f"wrk exited {done.returncode}: {done.stderr.strip() or done.stdout[-500:]}")
    raw = json.loads(lines[-1][len(_MARK):])
    seconds_run = raw["duration_us"] / 1e6
    errors = raw["errors"]
    latency = raw["latency_us"]
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / seconds_run,
        "errors": sum(errors.values()),
        "error_detail": errors,
        "p50_ms": latency["p50"] / 1000,
        "p90_ms": latency["p90"] / 1000,
        "p99_ms": latency["p99"] / 1000,
        "max_ms": latency["max"] / 1000,
        "mean_ms": latency["mean"] / 1000,
    }

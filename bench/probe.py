"""Machine-noise probe: a fixed pure-Python job timed on the server CPU.

Quiet, it takes ~10 ms here; under other load on the host it takes two to four times that. Taken
before and after each round, it tells which rounds ran on a busy machine.
"""

import os
import pathlib
import statistics
import time

from bench.plan import CLIENT_CPU, SERVER_CPU


def _job() -> int:
    total = 0
    for i in range(200_000):
        total += i * i % 7
    return total


def measure(repeats: int = 7) -> dict:
    """Milliseconds for the fixed job on the server CPU: best and median of `repeats` runs."""
    os.sched_setaffinity(0, {SERVER_CPU})
    try:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            _job()
            times.append((time.perf_counter() - start) * 1000)
    finally:
        os.sched_setaffinity(0, {CLIENT_CPU})
    return {"best_ms": min(times), "median_ms": statistics.median(times), "cpu_pressure": _cpu_pressure(),
            "at": time.time()}


def _cpu_pressure() -> float | None:
    """The kernel's share of the last 10 s in which some task waited for a CPU (PSI), in percent."""
    try:
        line = pathlib.Path("/proc/pressure/cpu").read_text().splitlines()[0]  # "some avg10=1.23 ..."
    except OSError:
        return None
    return float(line.split()[1].split("=")[1])

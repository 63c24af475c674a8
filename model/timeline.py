"""Where a model load spends its time, step by step, for the `model_loaded` log line."""

import contextlib
import os
import time


def _process_started() -> float | None:
    """When this process started, in seconds since boot (Linux's /proc; None elsewhere)."""
    try:
        with open("/proc/self/stat") as f:
            # Fields after the ")" that closes the command name; starttime is field 22 of the line.
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _since_boot() -> float | None:
    try:
        with open("/proc/uptime") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# Taken when the model package is first imported: in gunicorn's master (main.py imports it there), so a
# forked worker reports the time since the server itself started, not since its own fork.
_SERVER_STARTED = _process_started()


class Timeline:
    """Seconds per named step (import, fetch, verify, load, first_prediction), summed if a step repeats,
    and `details` that say how the steps went (e.g. which form of the model was read)."""

    def __init__(self):
        self._started = time.perf_counter()
        self.steps: dict[str, float] = {}
        self.details: dict[str, str] = {}

    @contextlib.contextmanager
    def step(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = self.steps.get(name, 0.0) + time.perf_counter() - started

    def as_dict(self) -> dict:
        """`<step>_s` for every step, `total_s` from the timeline's start, rounded to 0.1 ms, and
        `since_server_start_s`: from the server process's start to now (10 ms resolution), which also
        counts the server's own start before the load began."""
        fields = {f"{name}_s": round(seconds, 4) for name, seconds in self.steps.items()}
        fields["total_s"] = round(time.perf_counter() - self._started, 4)
        now = _since_boot()
        if now is not None and _SERVER_STARTED is not None:
            fields["since_server_start_s"] = round(now - _SERVER_STARTED, 2)
        return fields

"""Where a model load spends its time, step by step, for the `model_loaded` log line."""

import contextlib
import time


class Timeline:
    """Seconds per named step (import, fetch, verify, load, first_prediction), summed if a step repeats."""

    def __init__(self):
        self._started = time.perf_counter()
        self.steps: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = self.steps.get(name, 0.0) + time.perf_counter() - started

    def as_dict(self) -> dict:
        """`<step>_s` for every step, and `total_s` from the timeline's start, rounded to 0.1 ms."""
        fields = {f"{name}_s": round(seconds, 4) for name, seconds in self.steps.items()}
        fields["total_s"] = round(time.perf_counter() - self._started, 4)
        return fields

"""The task's log: one JSON line per event on stdout in the function's shape (`service.logs`), with the
job, execution and task on every line; a progress line every few seconds and a summary at the end."""

import logging
import sys
import time

from service.logs import JsonFormatter

log = logging.getLogger("batch")


def configure(level: str, static: dict) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(static))
    for name in ("batch", "model"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


class Meter:
    """Rows and errors so far; logs a progress line at most every `every_s` seconds (0: after every batch)."""

    def __init__(self, every_s: float):
        self.rows = self.errors = 0
        self.started = time.monotonic()
        self._every_s = every_s
        self._next = self.started + every_s

    def rate(self) -> float:
        return round(self.rows / max(time.monotonic() - self.started, 1e-9), 1)

    def add(self, rows: int, errors: int, shard: str) -> None:
        self.rows += rows
        self.errors += errors
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._every_s
            log.info(f"{self.rows} rows scored ({self.rate():,.0f} rows/s), {self.errors} errors", extra={
                "event": "batch_progress", "rows": self.rows, "errors": self.errors, "rows_per_s": self.rate(),
                "shard": shard, "seconds": round(now - self.started, 3)})

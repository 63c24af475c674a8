"""Adaptive micro-batching: rows of requests that arrive while the model is busy share the next call.

A request that finds the model idle runs at once, in its own thread, so a lone client sees no added
latency. Requests that arrive during a call queue up; when the call ends, the first of them runs one
model call for all of them (up to `max_rows` rows) and hands the results out. A scikit-learn call
costs about the same for 1 row as for hundreds, so throughput under concurrency grows with the batch.
If a coalesced call fails, each request in it is run alone, so one request's problem stays its own.
"""

import threading

import numpy as np


class _Job:
    __slots__ = ("rows", "proba", "event", "batch", "result", "error")

    def __init__(self, rows: np.ndarray, proba: bool):
        self.rows, self.proba = rows, proba
        self.event = threading.Event()
        self.batch: list["_Job"] | None = None
        self.result = self.error = None


class Batcher:
    """Runs `predict(rows, proba) -> (labels, probabilities or None)` for concurrent callers, coalescing."""

    def __init__(self, predict, max_rows: int = 1024):
        self._predict = predict
        self._max_rows = max_rows
        self._lock = threading.Lock()
        self._busy = False
        self._queue: list[_Job] = []

    def __call__(self, rows: np.ndarray, proba: bool):
        job = _Job(rows, proba)
        with self._lock:
            lead = not self._busy
            if lead:
                self._busy = True
            else:
                self._queue.append(job)
        if not lead:
            job.event.wait()
        if job.batch is not None or lead:
            self._run(job.batch or [job])
            self._hand_off()
        if job.error is not None:
            raise job.error
        return job.result

    def _hand_off(self) -> None:
        """Gives the queued jobs (up to max_rows rows) to the first of them to run, or goes idle."""
        with self._lock:
            if not self._queue:
                self._busy = False
                return
            size, count = 0, 0
            for job in self._queue:
                if count and size + len(job.rows) > self._max_rows:
                    break
                size += len(job.rows)
                count += 1
            batch, self._queue = self._queue[:count], self._queue[count:]
        batch[0].batch = batch
        batch[0].event.set()

    def _run(self, batch: list[_Job]) -> None:
        if len(batch) == 1:
            self._run_one(batch[0])
        else:
            try:
                self._run_many(batch)
            except Exception:
                for job in batch:
                    self._run_one(job)
        for job in batch[1:]:
            job.event.set()

    def _run_one(self, job: _Job) -> None:
        try:
            job.result = self._predict(job.rows, job.proba)
        except Exception as e:
            job.error = e

    def _run_many(self, batch: list[_Job]) -> None:
        rows = np.concatenate([job.rows for job in batch])
        labels, _ = self._predict(rows, False)
        wanted = [job for job in batch if job.proba]
        probs = self._predict(np.concatenate([job.rows for job in wanted]), True)[1] if wanted else None
        start = proba_start = 0
        for job in batch:
            end = start + len(job.rows)
            job_probs = None
            if job.proba:
                job_probs = probs[proba_start:proba_start + len(job.rows)]
                proba_start += len(job.rows)
            job.result = (labels[start:end], job_probs)
            start = end

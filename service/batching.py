"""Adaptive micro-batching: rows of requests that arrive while the model is busy share the next call.

A request that finds the model idle runs at once, in its own thread, so a lone client sees no added
latency. Requests that arrive during a call queue up; when the call ends, the first of them runs one
model call for the queued label requests (up to `max_rows` rows) and hands the results out. A
scikit-learn call costs about the same for 1 row as for hundreds, so throughput under concurrency
grows with the batch. Labels are computed row by row, so they are identical whatever the batch.
Class probabilities of linear models are not bit-stable across batch sizes (BLAS sums in another
order), so requests for probabilities are never merged: each runs in a call of its own. If a merged
call fails, each request in it is run alone, so one request's problem stays its own.
"""

import threading


class _Job:
    __slots__ = ("rows", "proba", "event", "batch", "result", "error")

    def __init__(self, rows, proba: bool):
        self.rows, self.proba = rows, proba
        self.event = threading.Event()
        self.batch: list[_Job] | None = None
        self.result = self.error = None


class Batcher:
    """Runs `predict(rows, proba) -> (labels, probabilities or None)` for concurrent callers, coalescing."""

    def __init__(self, predict, max_rows: int = 1024):
        self._predict = predict
        self._max_rows = max_rows
        self._lock = threading.Lock()
        self._busy = False
        self._queue: list[_Job] = []

    def __call__(self, rows, proba: bool):
        job = _Job(rows, proba)
        with self._lock:
            lead = not self._busy
            if lead:
                self._busy = True
            else:
                self._queue.append(job)
        if not lead:
            job.event.wait()
        if lead or job.batch is not None:
            self._run(job.batch or [job])
            self._hand_off()
        if job.error is not None:
            raise job.error
        return job.result

    def _hand_off(self) -> None:
        """Gives the next batch to its first job's thread to run, or marks the model idle."""
        with self._lock:
            if not self._queue:
                self._busy = False
                return
            batch = self._next_batch()
        batch[0].batch = batch
        batch[0].event.set()

    def _next_batch(self) -> list[_Job]:
        if self._queue[0].proba:
            return [self._queue.pop(0)]
        batch, rest, size = [], [], 0
        for job in self._queue:
            if job.proba or (batch and size + len(job.rows) > self._max_rows):
                rest.append(job)
            else:
                batch.append(job)
                size += len(job.rows)
        self._queue = rest
        return batch

    def _run(self, batch: list[_Job]) -> None:
        if len(batch) == 1:
            self._run_one(batch[0])
        else:
            try:
                import numpy as np  # in the worker only, like every model call

                labels, _ = self._predict(np.concatenate([job.rows for job in batch]), False)
                start = 0
                for job in batch:
                    job.result, start = (labels[start:start + len(job.rows)], None), start + len(job.rows)
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

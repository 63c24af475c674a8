"""Adaptive micro-batching: rows of requests that arrive while the model is busy share the next call.

The model runs in one thread of its own, so the event loop keeps reading requests while it works.
A request that finds the model idle is sent to it at once, so a lone client sees no added latency.
Requests that arrive during a call queue up; when the call ends, the queued label requests go to the
model together, as one call (up to `max_rows` rows), and each gets its own slice of the answer. A
scikit-learn call costs about the same for 1 row as for hundreds, so throughput under concurrency
grows with the batch. Labels are computed row by row, so they are identical whatever the batch.
Class probabilities of linear models are not bit-stable across batch sizes (BLAS sums in another
order), so requests for probabilities are never merged: each runs in a call of its own. If a merged
call fails, each request in it is run alone, so one request's problem stays its own.
"""

import asyncio
import concurrent.futures
import dataclasses
import time


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A request's answer, with how it was served: rows in the model call it joined, time it waited."""

    labels: list
    probabilities: list | None
    batch_rows: int
    queued_ms: float


class Batcher:
    """Awaitable `(rows, proba) -> Outcome`, coalescing concurrent callers.

    `predict(rows, proba) -> (labels, probabilities or None)` runs in the model's thread;
    `concat(list of rows) -> rows` merges requests' rows; `size(rows)` counts them.
    """

    def __init__(self, predict, concat, size, max_rows: int = 1024, merge: bool = True):
        self._predict, self._concat, self._size = predict, concat, size
        self._max_rows = max_rows
        self._merge = merge
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="model")
        self._busy = False
        self._queue: list[tuple] = []  # (rows, proba, future, queued at)
        self._tasks: set[asyncio.Task] = set()

    async def __call__(self, rows, proba: bool) -> Outcome:
        loop = asyncio.get_running_loop()
        if self._busy:
            future = loop.create_future()
            self._queue.append((rows, proba, future, time.perf_counter()))
            return await future
        self._busy = True
        try:
            labels, probs = await loop.run_in_executor(self._executor, self._predict, rows, proba)
            return Outcome(labels, probs, self._size(rows), 0.0)
        finally:
            self._next(loop)

    def _next(self, loop) -> None:
        """Starts the next batch from the queue, or marks the model idle."""
        if not self._queue:
            self._busy = False
            return
        task = loop.create_task(self._run(loop, self._take()))
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    def _take(self) -> list[tuple]:
        if self._queue[0][1] or not self._merge:
            return [self._queue.pop(0)]
        batch, rest, size = [], [], 0
        for job in self._queue:
            if job[1] or (batch and size + self._size(job[0]) > self._max_rows):
                rest.append(job)
            else:
                batch.append(job)
                size += self._size(job[0])
        self._queue = rest
        return batch

    async def _run(self, loop, batch: list[tuple]) -> None:
        try:
            if len(batch) > 1:
                try:
                    await self._run_merged(loop, batch)
                    return
                except Exception:  # noqa: BLE001 - retried one by one below, so each gets its own error
                    pass
            for rows, proba, future, queued_at in batch:
                waited = _ms_since(queued_at)
                try:
                    labels, probs = await loop.run_in_executor(self._executor, self._predict, rows, proba)
                    _settle(future, Outcome(labels, probs, self._size(rows), waited))
                except Exception as e:  # noqa: BLE001 - handed to the request it belongs to
                    _settle(future, error=e)
        finally:
            self._next(loop)

    async def _run_merged(self, loop, batch: list[tuple]) -> None:
        started = time.perf_counter()
        rows = self._concat([job[0] for job in batch])
        total = self._size(rows)
        labels, _ = await loop.run_in_executor(self._executor, self._predict, rows, False)
        start = 0
        for job_rows, _, future, queued_at in batch:
            count = self._size(job_rows)
            _settle(future, Outcome(labels[start:start + count], None, total, round((started - queued_at) * 1000, 3)))
            start += count


def _ms_since(moment: float) -> float:
    return round((time.perf_counter() - moment) * 1000, 3)


def _settle(future: asyncio.Future, result=None, error: Exception | None = None) -> None:
    if future.done():  # the client went away and its request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)

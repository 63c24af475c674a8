"""Micro-batching: coalesced calls give exactly the unbatched results, and errors stay per request."""

import asyncio
import concurrent.futures
import threading
import time

import numpy as np
import pytest
from sklearn.datasets import load_iris

from inference.batching import Batcher, Outcome
from model import artifact
from tests.conftest import IRIS_ROW


class Recorder:
    """Wraps a predict function, slowing each call so concurrent callers must queue, and records batch sizes."""

    def __init__(self, predict, delay=0.02):
        self.predict, self.delay, self.sizes = predict, delay, []
        self._lock = threading.Lock()

    def __call__(self, rows, proba):
        with self._lock:
            self.sizes.append(len(rows))
        time.sleep(self.delay)
        return self.predict(rows, proba)


def batcher_of(predict, **options) -> Batcher:
    """A Batcher over numpy matrices, as the predictor's is over validated rows."""
    return Batcher(predict, np.concatenate, len, **options)


def answer(outcome):
    """(labels, probabilities) of an Outcome; anything else (an exception) as it is."""
    return (outcome.labels, outcome.probabilities) if isinstance(outcome, Outcome) else outcome


def run_concurrently(batcher, jobs):
    """Every job submitted at once on one event loop, as concurrent requests arrive at a worker."""

    async def one(rows, proba):
        try:
            return await batcher(rows, proba)
        except Exception as e:  # noqa: BLE001 - the test inspects each job's own outcome
            return e

    async def main():
        return [answer(o) for o in await asyncio.gather(*(one(rows, proba) for rows, proba in jobs))]

    return asyncio.run(main())


@pytest.mark.parametrize("kind", ["forest", "logreg"])
def test_coalesced_results_are_identical_to_unbatched(trained, kind):
    estimator = artifact.load(trained(kind), artifact.LoadPolicy()).estimator

    def predict(rows, proba):
        return estimator.predict(rows).tolist(), estimator.predict_proba(rows).tolist() if proba else None

    recorder = Recorder(predict)
    data = load_iris().data
    rng = np.random.default_rng(0)
    jobs = [(data[rng.choice(len(data), size=1 + i % 5)], i % 3 == 0) for i in range(48)]
    results = run_concurrently(batcher_of(recorder), jobs)
    for (rows, proba), (labels, probs) in zip(jobs, results):
        assert labels == estimator.predict(rows).tolist()
        if proba:
            assert probs == estimator.predict_proba(rows).tolist()
        else:
            assert probs is None
    assert max(recorder.sizes) > 5, "concurrent requests should have been coalesced"
    assert len(recorder.sizes) < len(jobs)


def test_a_lone_request_runs_at_once_in_its_own_call():
    recorder = Recorder(lambda rows, proba: (rows.sum(axis=1).tolist(), None), delay=0)
    batcher = batcher_of(recorder)

    async def sequential():
        return [await batcher(np.full((2, 2), i, dtype=float), False) for i in range(3)]

    outcomes = asyncio.run(sequential())
    assert [answer(o) for o in outcomes] == [([2.0 * i, 2.0 * i], None) for i in range(3)]
    assert [(o.batch_rows, o.queued_ms) for o in outcomes] == [(2, 0.0)] * 3
    assert recorder.sizes == [2, 2, 2]


def test_queued_requests_report_the_merged_call_and_their_wait():
    recorder = Recorder(lambda rows, proba: (rows[:, 0].tolist(), None), delay=0.05)
    batcher = batcher_of(recorder)

    async def main():
        return await asyncio.gather(*(batcher(np.full((1, 1), float(i)), False) for i in range(5)))

    first, *queued = asyncio.run(main())
    assert (first.batch_rows, first.queued_ms) == (1, 0.0)
    assert [o.batch_rows for o in queued] == [4] * 4, "the four that waited share one call"
    assert all(o.queued_ms >= 40 for o in queued), [o.queued_ms for o in queued]
    assert [o.labels for o in queued] == [[1.0], [2.0], [3.0], [4.0]]


def test_a_failing_request_does_not_fail_its_batch_neighbours():
    def predict(rows, proba):
        if (rows < 0).any():
            raise ValueError("negative")
        return rows[:, 0].tolist(), None

    recorder = Recorder(predict)
    jobs = [(np.array([[float(i), 0.0]]), False) for i in range(20)]
    jobs[7] = (np.array([[-1.0, 0.0]]), False)
    results = run_concurrently(batcher_of(recorder), jobs)
    assert isinstance(results[7], ValueError)
    assert [r for i, r in enumerate(results) if i != 7] == [([float(i)], None) for i in range(20) if i != 7]
    assert max(recorder.sizes) > 1


def test_batches_respect_the_row_cap():
    recorder = Recorder(lambda rows, proba: (rows[:, 0].tolist(), None))
    jobs = [(np.ones((30, 1)), False) for _ in range(12)]
    results = run_concurrently(batcher_of(recorder, max_rows=64), jobs)
    assert all(r == ([1.0] * 30, None) for r in results)
    assert max(recorder.sizes) <= 64


def test_without_merging_each_request_runs_alone():
    recorder = Recorder(lambda rows, proba: (rows[:, 0].tolist(), None))
    jobs = [(np.full((1, 1), float(i)), False) for i in range(10)]
    results = run_concurrently(batcher_of(recorder, merge=False), jobs)
    assert results == [([float(i)], None) for i in range(10)]
    assert recorder.sizes == [1] * 10


def test_http_batch_with_a_bad_request_answers_everyone_else(make_client, trained):
    client = make_client(MODEL_URI=trained("forest"))
    assert client.post("/predict", json={"features": IRIS_ROW}).status_code == 200
    bodies = [{"features": IRIS_ROW}] * 15 + [{"features": [1, 2, "x", 4]}]

    def post(body):
        response = client.post("/predict", json=body)
        return response.status_code, response.json()

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(post, bodies))
    assert [code for code, _ in outcomes] == [200] * 15 + [400]
    assert all(body["predictions"] == [0] for _, body in outcomes[:15])

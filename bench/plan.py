"""What a run does: paths, durations and rounds, for the full run and the `--quick` smoke run."""

import dataclasses
import pathlib

BENCH_DIR = pathlib.Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PEERS_DIR = BENCH_DIR / "peers"
VENVS_DIR = BENCH_DIR / ".peers"
RESULTS_DIR = BENCH_DIR / "results"

# The server gets one CPU and the load generator the other, so neither steals from the other.
SERVER_CPU = 0
CLIENT_CPU = 1
# BLAS and OpenMP pools sized to the one CPU each server gets, for every system alike.
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# What the image holds of the repository (the Dockerfile's COPY lines): our function runs from a copy.
APP_FILES = ("main.py", "service", "inference", "batch", "model")

# Two numeric models on iris (a float matrix), and a DataFrame pipeline with typed columns (rows as objects).
MODELS = ("forest", "logreg", "churn")
BATCH_ROWS = 256
CONCURRENCY = 16


@dataclasses.dataclass(frozen=True)
class Plan:
    rounds: int
    load_seconds: int  # each wrk run (c=1, c=16, batch)
    warmup_seconds: int  # untimed wrk run before the measured ones; 0 skips it
    floor_seconds: float  # each in-process timing loop
    prime: bool  # one untimed start per system first, so page cache and .pyc files are warm for all
    cold_start_timeout_s: float = 60.0
    wrk_timeout_s: int = 5


FULL = Plan(rounds=3, load_seconds=5, warmup_seconds=1, floor_seconds=3.0, prime=True)
QUICK = Plan(rounds=1, load_seconds=1, warmup_seconds=0, floor_seconds=0.3, prime=False)

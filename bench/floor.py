"""The in-process floor: `model.predict` called directly, with no server around it.

Run as its own process on the server CPU (`python -m bench.floor MODEL.joblib ROWS.json SECONDS`) so
its cold start (spawn -> first prediction) and memory compare with the servers'. It prints "ready"
after the first prediction, then one JSON line of timings. Rows that are objects (a DataFrame
pipeline's) are built into DataFrames once, before the timing: the floor is the model call alone.
"""

import json
import sys
import time


def _memory_mb(path: str, field: str) -> float:
    with open(path) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _time_calls(predict, rows, seconds: float) -> list[float]:
    times = []
    deadline = time.perf_counter() + seconds
    while (now := time.perf_counter()) < deadline or len(times) < 5:
        predict(rows)
        times.append(time.perf_counter() - now)
    return times


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def main(model_path: str, rows_path: str, seconds: float) -> None:
    import joblib
    import numpy as np

    model = joblib.load(model_path)
    with open(rows_path) as rows_file:
        rows = json.load(rows_file)
    if isinstance(rows["row"], dict):
        import pandas as pd

        one, batch = pd.DataFrame.from_records([rows["row"]]), pd.DataFrame.from_records(rows["batch"])
    else:
        one, batch = np.asarray([rows["row"]], dtype=float), np.asarray(rows["batch"], dtype=float)
    first = model.predict(one).tolist()
    print("ready", json.dumps(first), flush=True)
    rss, pss = _memory_mb("/proc/self/status", "VmRSS"), _memory_mb("/proc/self/smaps_rollup", "Pss")
    single = _time_calls(model.predict, one, seconds)
    batched = _time_calls(model.predict, batch, seconds)
    print(json.dumps({
        "p50_ms": _percentile(single, 50) * 1000,
        "p99_ms": _percentile(single, 99) * 1000,
        # One caller, one row per call: the most an unbatched server could ever answer per second.
        "rps_c1": len(single) / sum(single),
        "rps_c16": len(single) / sum(single),
        "batch_rows_per_s": len(batch) * len(batched) / sum(batched),
        "rss_mb": rss,
        "pss_mb": pss,
    }), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))

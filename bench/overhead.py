"""Where a request's time goes in our function, layer by layer: `python -m bench.overhead [--model M]`.

Times one single-row request, in this process on the server CPU, through each layer in turn: the bare
`estimator.predict`, the predictor (batcher included), the router (`service.routes`: parse, validate,
log line), and the Flask app that functions-framework builds, called as WSGI (no HTTP server). What is left between
the Flask figure and the benchmark's c=1 p50 is gunicorn, the socket, and wrk.
"""

import argparse
import io
import logging
import os
import statistics
import sys
import time

import numpy as np
from werkzeug.test import EnvironBuilder

from bench import fit, plan


def _median_us(call, seconds: float) -> float:
    times, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 50:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__)
    parser.add_argument("--model", choices=plan.MODELS, default="logreg")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    model_files = fit.prepare(args.model, plan.RESULTS_DIR / "work")
    os.environ.update({**plan.THREAD_ENV, "MODEL_URI": str(model_files.ours_dir), "MODEL_WARMUP": "false"})
    os.sched_setaffinity(0, {plan.SERVER_CPU})
    sys.path.insert(0, str(plan.REPO_DIR))
    import functions_framework

    import main as function

    model = function.HOLDER.get()
    rows = np.asarray([model_files.row])
    body = (b'{"features":[' + ",".join(map(repr, model_files.row)).encode() + b"]}")
    headers = {"Content-Type": "application/json"}
    predictor = function.APP._predictor_for(model)
    wsgi = functions_framework.create_app("predict", str(plan.REPO_DIR / "main.py"))
    environ = EnvironBuilder(path="/predict", method="POST", data=body, headers=headers).get_environ()

    def flask_app():
        # The WSGI call gunicorn makes, minus gunicorn: a fresh environ and body stream per request.
        b"".join(wsgi({**environ, "wsgi.input": io.BytesIO(body)}, lambda status, headers, exc=None: None))

    def route():
        function.APP.handle("POST", "/predict", headers, len(body), io.BytesIO(body).read)

    layers = {
        "estimator.predict": lambda: model.estimator.predict(rows),
        "predictor (batcher)": lambda: predictor(rows),
        "router (parse, validate, log)": route,
        "flask app (WSGI call)": flask_app,
    }
    results = {}
    logger = logging.getLogger("request")
    with open(os.devnull, "w") as sink:
        for handler in logger.handlers:  # the request log lines: still formatted and written, unseen
            handler.setStream(sink)
        for name, call in layers.items():
            results[name] = _median_us(call, args.seconds)
        level = logger.level
        logger.setLevel("WARNING")
        results["router, request log off"] = _median_us(route, args.seconds)
        logger.setLevel(level)
    print(f"{args.model}: median per single-row call, microseconds (CPU {plan.SERVER_CPU})")
    previous = 0.0
    for name, micros in results.items():
        extra = f"  (+{micros - previous:.0f})" if name != "router, request log off" else ""
        print(f"  {micros:8.0f}  {name}{extra}")
        previous = micros if name != "router, request log off" else previous
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

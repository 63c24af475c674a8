"""Where a request's time goes in our function, layer by layer: `python -m bench.overhead [--model M]`.

Times one single-row request, in this process on the server CPU and on one event loop as in a
server's worker, through each layer in turn: the bare `estimator.predict`; the validated row built
into what the model is called with (a DataFrame for "churn") and that call; the predictor (the
model's own thread and the micro-batcher); the router (`service.routes.FunctionApp.handle`: read,
parse, validate, log line); and the ASGI app functions-framework builds for `main.py` (Starlette,
its middleware, `main.predict`), called the way uvicorn calls it. What is left between the ASGI
figure and the benchmark's c=1 p50 is uvicorn's HTTP parsing, gunicorn, the socket and wrk.
"""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import pathlib
import statistics
import sys
import time

from bench import fit, plan, systems


async def _median_us(call, seconds: float, calls: int) -> float:
    """The median of at least `calls` awaited calls, timed for at least `seconds`."""
    times, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < calls:
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def _asgi_post(app, path: str, body: bytes):
    """An ASGI HTTP request as uvicorn makes one: scope, then the body, then a disconnect once the
    response is sent. Returns a coroutine function giving (status, response body)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080),
        "headers": [(b"host", b"127.0.0.1:8080"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }

    async def request() -> tuple[int, bytes]:
        pending, answered = [{"type": "http.request", "body": body, "more_body": False}], asyncio.Event()
        status, chunks = 0, []

        async def receive():
            if pending:
                return pending.pop()
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    answered.set()

        await app(dict(scope), receive, send)
        return status, b"".join(chunks)

    return request


async def _measure(args, model_files) -> dict[str, float]:
    import functions_framework

    app = functions_framework.create_app(target="predict", source=str(plan.REPO_DIR / "main.py"))
    # create_app loaded main.py under its file's name: this is the module the app runs, not a copy.
    import main as function

    for logger in logging.Logger.manager.loggerDict.values():  # stdout is for the table
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)
    from inference.inputs import model_input
    from inference.rows import from_instances

    model = function.HOLDER.get()
    instance = model_files.row if model_files.layout == "frame" else list(model_files.row)
    rows = from_instances(model.schema, [instance], 1)
    x = model_input(model, rows)
    body = systems.plain_bodies(model_files)["row_body"]
    headers = {"Content-Type": "application/json"}
    predictor = function.APP._predictor_for(model)

    async def estimator():
        model.estimator.predict(x)

    async def inputs():
        model.estimator.predict(model_input(model, rows))

    async def batcher():
        await predictor(rows)

    async def router():
        chunks = [body]

        async def receive() -> bytes:
            return chunks.pop() if chunks else b""

        await function.APP.handle("POST", "/predict", headers, len(body), receive)

    asgi_post = _asgi_post(app, "/predict", body)

    async def asgi():
        await asgi_post()

    with contextlib.redirect_stdout(sys.stderr):
        status, answer = await asgi_post()
    if status != 200 or json.loads(answer)["predictions"] != [model_files.expected_row]:
        raise SystemExit(f"the ASGI app answered {status} {answer[:300]!r}, not {model_files.expected_row!r}")
    layers = {"estimator.predict": estimator, "input built, predict": inputs, "predictor (thread, batcher)": batcher,
              "router (read, parse, validate, log)": router, "ASGI app (functions-framework)": asgi}
    # The request log lines are still formatted and written, to nowhere.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        return {name: await _median_us(call, args.seconds, args.calls) for name, call in layers.items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=plan.MODELS, default="logreg")
    parser.add_argument("--seconds", type=float, default=2.0, help="time each layer at least this long (default 2)")
    parser.add_argument("--calls", type=int, default=50, help="and at least this many calls (default 50)")
    parser.add_argument("--work", type=pathlib.Path, default=plan.RESULTS_DIR / "work",
                        help="where the model is fitted (default bench/results/work)")
    args = parser.parse_args(argv)
    model_files = fit.prepare(args.model, args.work)
    os.environ.update({**plan.THREAD_ENV, "MODEL_URI": str(model_files.ours_dir), "MODEL_WARMUP": "false"})
    os.sched_setaffinity(0, {plan.SERVER_CPU})
    sys.path.insert(0, str(plan.REPO_DIR))
    results = asyncio.run(_measure(args, model_files))
    print(f"{args.model}: median per single-row call, microseconds (CPU {plan.SERVER_CPU})")
    previous = 0.0
    for name, micros in results.items():
        print(f"  {micros:8.0f}  {name}  (+{micros - previous:.0f})")
        previous = micros
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

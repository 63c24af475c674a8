"""Byte-compile what the server imports, found by running it once (an image build step).

Compiling every module of NumPy, SciPy and scikit-learn adds ~45 MB of .pyc files the server never
reads; compiling none makes every cold start compile in memory, since the runtime file system may be
read-only. So: start the real server with bytecode writing on, send it the requests a live instance
gets (rows of the built-in model's own examples, so a DataFrame model imports what pandas runs for
it), stop it, then compile what it imported again with compileall as unchecked-hash .pyc files
(sources in an image never change, so imports can skip the freshness check) and drop the rest.
The standard library belongs to the base image, so its imported modules are only listed (for
`compileall -i LIST` in the runtime stage: the official base ships no .pyc files).
The run doubles as a smoke test: the build fails if the baked-in model does not answer.
`--optimize 2` compiles for a server that runs with PYTHONOPTIMIZE=2 (as the image's does).
`--check` runs only that smoke test and compiles nothing: for a finished root file system, run
inside it (chroot) as the server's user.

Usage: python warm_bytecode.py [--optimize N] [--import MODULE]... [--stdlib-list FILE] [--examples FILE] [--port PORT] ROOT...
       python warm_bytecode.py --check [--examples FILE] [--port PORT]
"""

import argparse
import compileall
import importlib.util
import json
import os
import pathlib
import py_compile
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request

_PORT = 8765
_READY_SECONDS = 90
# The examples the image's built-in model was trained or packaged with (model/examples.py), one JSON object a line.
_EXAMPLES = "/app/model/artifacts/examples.jsonl"
_BAD_REQUEST = ("POST", "/predict", {"features": "not numbers"})


def _must_answer(examples: pathlib.Path):
    """Requests that must answer 200: the model's description, and predictions for two of its examples."""
    rows = [json.loads(line) for line in examples.read_text().splitlines()[:2]]
    return [("GET", "/", None), ("POST", "/predict", {"instances": rows})]


def _call(port, method, path, body):
    """Sends one JSON request to the local server and returns the HTTP status."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _wait_until_answering(server, port):
    """Polls GET / until the server answers; exits if it dies or never does."""
    deadline = time.monotonic() + _READY_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"server exited with status {server.returncode} before answering")
        try:
            _call(port, "GET", "/", None)
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    sys.exit(f"server did not answer within {_READY_SECONDS} s")


def _server_env(optimize: int) -> dict:
    """This environment, with bytecode writing on, at the server's optimization level."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONOPTIMIZE"] = str(optimize)
    return env


def _serve_once(optimize: int, examples: pathlib.Path, port: int):
    """Runs the real server with bytecode writing on and sends it the usual requests."""
    env = _server_env(optimize)
    server = subprocess.Popen(
        [
            "functions-framework",
            "--target=predict",
            "--host=127.0.0.1",
            f"--port={port}",
        ],
        env=env,
    )
    try:
        _wait_until_answering(server, port)
        for method, path, body in _must_answer(examples):
            status = _call(port, method, path, body)
            if status != 200:
                sys.exit(f"{method} {path} answered {status}, expected 200")
        _call(port, *_BAD_REQUEST)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def _import_also(modules, optimize: int):
    """Imports modules the requests above do not reach (e.g. a gs:// model source), at the server's level."""
    if modules:
        subprocess.run([sys.executable, "-c", f"import {', '.join(modules)}"], env=_server_env(optimize), check=True)


def _recompile_used(root, optimize: int):
    """Replaces root's .pyc files by unchecked-hash ones for the same sources; returns the count."""
    used = set()
    for cached in root.rglob("*.pyc"):
        try:
            used.add(pathlib.Path(importlib.util.source_from_cache(cached)))
        except ValueError:
            pass
    for cache_dir in list(root.rglob("__pycache__")):
        shutil.rmtree(cache_dir)
    mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
    for source in sorted(path for path in used if path.is_file()):
        if not compileall.compile_file(source, quiet=1, invalidation_mode=mode, optimize=optimize):
            sys.exit(f"could not compile {source}")
    return len(used)


def _list_stdlib_used(out):
    """Writes the standard library sources that have .pyc files, one a line; returns the count."""
    stdlib = pathlib.Path(sysconfig.get_path("stdlib"))
    used = set()
    for cached in stdlib.rglob("__pycache__/*.pyc"):
        try:
            used.add(importlib.util.source_from_cache(cached))
        except ValueError:
            pass
    out.write_text("".join(f"{source}\n" for source in sorted(used) if os.path.isfile(source)))
    return len(used)


def main():
    parser = argparse.ArgumentParser(description="Byte-compile what the server imports (an image build step).")
    parser.add_argument("--optimize", type=int, choices=(0, 1, 2), default=0)
    parser.add_argument("--import", dest="modules", action="append", default=[])
    parser.add_argument("--stdlib-list", type=pathlib.Path)
    parser.add_argument("--examples", type=pathlib.Path, default=_EXAMPLES, help="rows to predict (default: %(default)s)")
    # A build has the network to itself; on a shared host (a test run) the default may be taken.
    parser.add_argument("--port", type=int, default=_PORT)
    parser.add_argument("--check", action="store_true", help="only serve the requests once; compile nothing")
    parser.add_argument("roots", nargs="*", type=pathlib.Path)
    args = parser.parse_args()
    if not args.roots and not args.check:
        parser.error("name a ROOT to compile, or --check")
    _serve_once(args.optimize, args.examples, args.port)
    if args.check:
        print("the server answered")
        return
    _import_also(args.modules, args.optimize)
    for root in args.roots:
        print(f"{root}: compiled {_recompile_used(root, args.optimize)} modules the server imports")
    if args.stdlib_list:
        print(f"{args.stdlib_list}: {_list_stdlib_used(args.stdlib_list)} stdlib modules")


if __name__ == "__main__":
    main()

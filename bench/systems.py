"""The systems under test: how each one is started and spoken to.

Every system gets the same model (fit.ModelFiles) and the same rows; only the envelope differs
(our function and FastAPI take `{"features": [...]}` / `{"instances": [[...]]}`, MLServer the V2
`inputs` tensor). Peers run without access logs, as one would deploy them.
"""

import dataclasses
import json
import os
import pathlib
from collections.abc import Callable

from bench.fit import ModelFiles
from bench.plan import PEERS_DIR, REPO_DIR, THREAD_ENV
from tests.net import free_port

OURS, OURS_URI, OURS_ONNX = "ours", "ours-uri", "ours-onnx"
FASTAPI, MLSERVER, FLOOR = "fastapi", "mlserver", "floor"
SERVERS = (OURS, OURS_URI, OURS_ONNX, FASTAPI, MLSERVER)
OWN = (OURS, OURS_URI, OURS_ONNX)
PEERS = (FASTAPI, MLSERVER)
LABELS = {
    OURS: "this function (functions-framework)",
    OURS_URI: "this function, model from MODEL_URI",
    OURS_ONNX: "this function, --runtime onnx",
    FASTAPI: "FastAPI + uvicorn",
    MLSERVER: "MLServer 1.7.1 (V2)",
    FLOOR: "in-process model.predict",
}


@dataclasses.dataclass(frozen=True)
class Launch:
    cmd: list[str]
    env: dict[str, str]
    cwd: pathlib.Path
    port: int
    path: str
    row_body: bytes
    batch_body: bytes
    predictions: Callable[[dict], list]  # response JSON -> list of predictions


# The runtime ENV of the Dockerfile that changes how the server runs (tests/test_bench_smoke.py checks
# these against the Dockerfile).
IMAGE_ENV = {"WORKERS": "1", "CLOUD_RUN_TIMEOUT_SECONDS": "0", "PYTHONUNBUFFERED": "1", "PYTHONOPTIMIZE": "2"}


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **THREAD_ENV, **extra}


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _ours(model: ModelFiles, work: pathlib.Path, bin_dir: pathlib.Path, model_uri=None) -> Launch:
    """As the image runs: its CMD and ENV (one gunicorn worker, no worker timeout), from a copy of the app
    whose built-in directory holds the model (fit.py); with `model_uri`, the repository serving that."""
    port = free_port()
    env = _env({**IMAGE_ENV, "PORT": str(port)})
    for name in ("MODEL_URI", "AIP_STORAGE_URI"):
        env.pop(name, None)
    if model_uri is not None:
        env["MODEL_URI"] = str(model_uri)
    return Launch(
        cmd=[str(bin_dir / "functions-framework"), "--target=predict", "--host=127.0.0.1", f"--port={port}"],
        env=env, cwd=REPO_DIR if model_uri is not None else model.ours_app, port=port, path="/predict",
        row_body=_json({"features": model.row}), batch_body=_json({"instances": model.batch}),
        predictions=lambda body: body["predictions"],
    )


def _ours_uri(model: ModelFiles, work: pathlib.Path, bin_dir: pathlib.Path) -> Launch:
    """The same model directory named by MODEL_URI, as a model from anywhere but the image is: full checks."""
    return _ours(model, work, bin_dir, model_uri=model.ours_dir)


def _ours_onnx(model: ModelFiles, work: pathlib.Path, bin_dir: pathlib.Path) -> Launch:
    """The same function and server, serving the model compiled with `--runtime onnx` (the compiled image)."""
    return _ours(model, work, bin_dir, model_uri=model.ours_onnx_dir)


def _fastapi(model: ModelFiles, work: pathlib.Path, bin_dir: pathlib.Path) -> Launch:
    port = free_port()
    return Launch(
        cmd=[str(bin_dir / "uvicorn"), "fastapi_app:app", "--app-dir", str(PEERS_DIR),
             "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        env=_env({"MODEL_PATH": str(model.joblib_path)}), cwd=work, port=port, path="/predict",
        row_body=_json({"features": model.row}), batch_body=_json({"instances": model.batch}),
        predictions=lambda body: body["predictions"],
    )


def _v2_body(rows: list[list[float]]) -> bytes:
    flat = [v for row in rows for v in row]
    tensor = {"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": flat}
    return _json({"inputs": [tensor]})


def _mlserver(model: ModelFiles, work: pathlib.Path, bin_dir: pathlib.Path) -> Launch:
    port = free_port()
    repo = work / f"mlserver-{model.name}"
    repo.mkdir(parents=True, exist_ok=True)
    settings = {"host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
                "metrics_port": free_port(), "debug": False}
    model_settings = {"name": "iris", "implementation": "mlserver_sklearn.SKLearnModel",
                      "parameters": {"uri": str(model.joblib_path), "version": "1"}}
    (repo / "settings.json").write_text(json.dumps(settings, indent=2))
    (repo / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    return Launch(
        cmd=[str(bin_dir / "mlserver"), "start", str(repo)],
        env=_env({}), cwd=repo, port=port, path="/v2/models/iris/infer",
        row_body=_v2_body([model.row]), batch_body=_v2_body(model.batch),
        predictions=lambda body: body["outputs"][0]["data"],
    )


BUILDERS = {OURS: _ours, OURS_URI: _ours_uri, OURS_ONNX: _ours_onnx, FASTAPI: _fastapi, MLSERVER: _mlserver}


def launch(system: str, model: ModelFiles, work: pathlib.Path, bin_dir: pathlib.Path) -> Launch:
    return BUILDERS[system](model, work, bin_dir)

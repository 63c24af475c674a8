"""The systems under test: how each one is started and spoken to.

Every system gets the same model (fit.ModelFiles) and the same rows; only the envelope differs
(our function and FastAPI take `{"features": [...]}` / `{"instances": [[...]]}`, MLServer the V2
`inputs` tensor). For a DataFrame model ("frame" layout) our function and FastAPI take
`{"instances": [{...}]}`, rows as objects keyed by column, and MLServer one V2 input per column with
its pandas codec. Peers run without access logs, as one would deploy them.
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
FASTAPI_FRAME_VENV = "fastapi-frame"
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


def venv_for(system: str, model: ModelFiles) -> str:
    """The venv (venvs.REQUIREMENTS) a system runs from for a model: FastAPI has pandas only for DataFrame
    models; the floor and our function with its model from MODEL_URI run from our function's venv."""
    if system == FASTAPI and model.layout == "frame":
        return FASTAPI_FRAME_VENV
    return OURS if system in (FLOOR, OURS_URI) else system


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **THREAD_ENV, **extra}


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def plain_bodies(model: ModelFiles) -> dict[str, bytes]:
    """One row and a batch: `{"features": [...]}` for numbers, `{"instances": [{...}]}` for a DataFrame model."""
    one = {"instances": [model.row]} if model.layout == "frame" else {"features": model.row}
    return {"row_body": _json(one), "batch_body": _json({"instances": model.batch})}


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
        **plain_bodies(model),
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
    app = "fastapi_frame_app:app" if model.layout == "frame" else "fastapi_app:app"
    return Launch(
        cmd=[str(bin_dir / "uvicorn"), app, "--app-dir", str(PEERS_DIR),
             "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        env=_env({"MODEL_PATH": str(model.joblib_path)}), cwd=work, port=port, path="/predict",
        **plain_bodies(model),
        predictions=lambda body: body["predictions"],
    )


def _v2_body(rows: list[list[float]]) -> bytes:
    flat = [v for row in rows for v in row]
    tensor = {"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": flat}
    return _json({"inputs": [tensor]})


def _v2_frame_body(rows: list[dict]) -> bytes:
    """MLServer's pandas codec: one input per column, the request's content type "pd". Strings travel
    as BYTES, decoded to `str` (not bytes) by the input's own content type "str", as the encoders were
    fitted on str; a missing number is null."""
    inputs = []
    for name, first in rows[0].items():
        values = [row[name] for row in rows]
        tensor = {"name": name, "shape": [len(rows)], "data": values}
        if isinstance(first, str):
            tensor.update(datatype="BYTES", parameters={"content_type": "str"})
        else:
            tensor["datatype"] = "BOOL" if isinstance(first, bool) else "FP64"
        inputs.append(tensor)
    return _json({"inputs": inputs, "parameters": {"content_type": "pd"}})


def _mlserver(model: ModelFiles, work: pathlib.Path, bin_dir: pathlib.Path) -> Launch:
    port = free_port()
    repo = work / f"mlserver-{model.name}"
    repo.mkdir(parents=True, exist_ok=True)
    settings = {"host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
                "metrics_port": free_port(), "debug": False}
    model_settings = {"name": model.name, "implementation": "mlserver_sklearn.SKLearnModel",
                      "parameters": {"uri": str(model.joblib_path), "version": "1"}}
    (repo / "settings.json").write_text(json.dumps(settings, indent=2))
    (repo / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    row_body, batch_body = (_v2_frame_body([model.row]), _v2_frame_body(model.batch)) if model.layout == "frame" else (
        _v2_body([model.row]), _v2_body(model.batch))
    return Launch(
        cmd=[str(bin_dir / "mlserver"), "start", str(repo)],
        env=_env({}), cwd=repo, port=port, path=f"/v2/models/{model.name}/infer",
        row_body=row_body, batch_body=batch_body,
        predictions=lambda body: body["outputs"][0]["data"],
    )


BUILDERS = {OURS: _ours, OURS_URI: _ours_uri, OURS_ONNX: _ours_onnx, FASTAPI: _fastapi, MLSERVER: _mlserver}


def launch(system: str, model: ModelFiles, work: pathlib.Path, bin_dir: pathlib.Path) -> Launch:
    return BUILDERS[system](model, work, bin_dir)

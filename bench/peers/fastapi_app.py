"""The design this project replaces: a FastAPI + uvicorn app around a joblib model.

Written the way such services usually are: load at import, pydantic request models, a sync handler
(FastAPI runs it in its thread pool). Run by the benchmark with
`uvicorn fastapi_app:app --host 127.0.0.1 --port PORT --no-access-log` and MODEL_PATH set.
"""

import os

import joblib
import numpy as np
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

model = joblib.load(os.environ["MODEL_PATH"])
app = FastAPI()


class PredictRequest(BaseModel):
    features: list[float] | None = None
    instances: list[list[float]] | None = None


@app.post("/predict")
def predict(request: PredictRequest) -> dict:
    rows = [request.features] if request.features is not None else request.instances
    if not rows:
        raise HTTPException(status_code=400, detail="send 'features' or 'instances'")
    return {"predictions": model.predict(np.asarray(rows, dtype=float)).tolist()}

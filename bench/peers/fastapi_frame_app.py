"""The design this project replaces, for a DataFrame pipeline: FastAPI + uvicorn around a joblib model.

Written the way such services usually are: load at import, a pydantic model per row with the
pipeline's columns (numbers that may be missing, two strings, a boolean), a sync handler (FastAPI runs
it in its thread pool) that builds `pd.DataFrame(rows)` and calls `model.predict` once per request.
Run by the benchmark with `uvicorn fastapi_frame_app:app --host 127.0.0.1 --port PORT --no-access-log`
and MODEL_PATH set, from a venv of its own (peers/fastapi_frame.txt: fastapi.txt plus pandas).
"""

import os

import joblib
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

model = joblib.load(os.environ["MODEL_PATH"])
app = FastAPI()


class Customer(BaseModel):
    tenure_months: float | None
    monthly_charges: float | None
    contract: str
    payment: str | None
    senior: bool


class PredictRequest(BaseModel):
    instances: list[Customer]


@app.post("/predict")
def predict(request: PredictRequest) -> dict:
    frame = pd.DataFrame([row.model_dump() for row in request.instances])
    return {"predictions": model.predict(frame).tolist()}

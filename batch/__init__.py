"""Batch scoring: `python -m batch INPUT OUTPUT` scores files of rows with the function's model and
validation, one Cloud Run job task at a time, and writes JSON lines in Vertex AI batch prediction's shape.

It sits beside `service/` (the HTTP edge) and uses the same layers below it: `inference/` for
validating and predicting, `model/` for loading; from `service/` it takes only the settings table, the
log line format and the JSON reader, so a job reads MODEL_URI and its rows exactly as the function does.
"""

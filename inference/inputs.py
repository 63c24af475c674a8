"""What the model is called with: the input it was fitted on, built from validated rows.

- "matrix" models get the float64 matrix as it is (no pandas).
- "frame" models fitted on a DataFrame get one, with the fitted column names and dtypes
  (`model.rows.frame`, the rule packaging verifies with); pandas is imported then, on first use, so
  numeric models never pay for it.
- "text" models get the 1-D array of strings.
A compiled (ONNX) model takes the columns themselves, one input per feature.
"""

from inference.rows import Rows
from model.rows import frame


def model_input(model, rows: Rows):
    schema = model.schema
    if schema.layout == "matrix":
        return rows.matrix
    if model.format == "onnx":
        return rows.columns
    if schema.layout == "text":
        return rows.columns[schema.names[0]]
    return frame(schema, rows.columns)


def concat(parts: list[Rows]) -> Rows:
    """The rows of several requests as one, in order (for one merged model call)."""
    import numpy as np

    if len(parts) == 1:
        return parts[0]
    count = sum(p.count for p in parts)
    if parts[0].matrix is not None:
        return Rows(count, matrix=np.concatenate([p.matrix for p in parts]))
    return Rows(count, columns={name: np.concatenate([p.columns[name] for p in parts]) for name in parts[0].columns})

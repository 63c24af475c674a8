"""Running the model: validating rows against its input schema, building what it was fitted on, calling
it (with micro-batching), and its first prediction. Used by the HTTP function (`service/`) and batch
scoring alike; it knows nothing of HTTP, and uses only `model/` below it."""

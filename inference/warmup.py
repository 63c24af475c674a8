"""The model's first prediction, made while loading: a model that cannot answer never becomes ready.

It predicts on the model's own example rows (examples.jsonl beside the manifest) when it has some,
else on one row made from the schema (each feature's first known category, or 0, false, "").
Either way the rows go through the same validation and input building as a request's.
"""

from inference import rows as row_validation
from inference.errors import InvalidInput
from inference.predictor import predict_now
from model.errors import ModelUnreadable

_PLACEHOLDER = {"number": 0.0, "integer": 0, "string": "", "boolean": False}


def example_row(schema) -> list | str:
    """One row in schema order that the schema accepts."""
    if schema.layout == "text":
        return "example"
    return [f.categories[0] if f.categories else _PLACEHOLDER[f.kind] for f in schema.features]


def warm_up(model) -> None:
    """Runs one prediction; raises ModelUnreadable (a load failure) if the model cannot make it."""
    instances = list(model.examples[:1]) or [example_row(model.schema)]
    try:
        rows = row_validation.from_instances(model.schema, instances, max_rows=len(instances))
        predict_now(model, rows, proba=model.has_proba and bool(model.classes))
    except InvalidInput as e:
        raise ModelUnreadable(f"model {model.name} loaded but could not make its first prediction: {e}") from None

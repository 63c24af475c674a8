"""Calling the model: labels (and class probabilities when asked) as JSON-native lists."""

from inference import inputs
from inference.batching import Batcher, Outcome
from inference.errors import InvalidInput
from inference.rows import Rows

__all__ = ["Outcome", "Predictor", "predict_now"]


def predict_now(model, rows: Rows, proba: bool = False):
    """(labels, probabilities or None) for validated rows, in the calling thread."""
    estimator = model.estimator
    x = inputs.model_input(model, rows)
    try:
        labels = estimator.predict(x).tolist()
        return labels, estimator.predict_proba(x).tolist() if proba else None
    except ValueError as e:
        # The rows passed the schema, so what is left is the model's own refusal (an encoder that meets a
        # value it cannot take, a transformer's range check): the caller's input, not a server fault.
        raise InvalidInput(f"the model refused the input: {_first_line(e)}") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


class Predictor:
    def __init__(self, model, batching: bool, max_rows: int):
        self.model = model
        # BATCHING=false still calls the model in its own thread, one request at a time.
        self._batcher = Batcher(self._predict, inputs.concat, _count, max_rows=max_rows, merge=batching)

    def _predict(self, rows: Rows, proba: bool):
        return predict_now(self.model, rows, proba)

    async def __call__(self, rows: Rows, proba: bool = False) -> Outcome:
        if proba and not self.model.has_proba:
            raise InvalidInput(f'model {self.model.name} does not give probabilities; drop "probabilities": true')
        return await self._batcher(rows, proba)


def _count(rows: Rows) -> int:
    return rows.count

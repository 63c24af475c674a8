"""Calling the model: labels (and class probabilities when asked) as JSON-native lists."""

from model.artifact import LoadedModel
from service.batching import Batcher
from service.errors import BadRequest


class Predictor:
    def __init__(self, model: LoadedModel, batching: bool, max_rows: int):
        self.model = model
        # BATCHING=false still calls the model in its own thread, one request at a time.
        self._batcher = Batcher(self._predict, max_rows=max_rows, merge=batching)

    def _predict(self, rows, proba: bool):
        estimator = self.model.estimator
        labels = estimator.predict(rows).tolist()
        return labels, estimator.predict_proba(rows).tolist() if proba else None

    async def __call__(self, rows, proba: bool = False):
        """(labels, probabilities or None) for a validated float matrix."""
        if proba and not self.model.has_proba:
            raise BadRequest(f'model {self.model.name} does not give probabilities; drop "probabilities": true')
        return await self._batcher(rows, proba)

"""A model's input schema: per feature its name, kind, whether it may be missing, and known categories.

(Interim: numeric features only; derivation from pipelines and samples comes with `python -m model package`.)
"""

import dataclasses

KINDS = ("number", "integer", "string", "boolean")
LAYOUTS = ("matrix", "frame", "text")


@dataclasses.dataclass(frozen=True)
class Feature:
    name: str
    kind: str
    nullable: bool = False
    categories: tuple | None = None
    unknown: str = "accept"
    kind_source: str = "estimator"
    dtype: str | None = None


@dataclasses.dataclass(frozen=True)
class Schema:
    features: tuple[Feature, ...]
    layout: str

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def to_dict(self) -> dict:
        return {"layout": self.layout, "features": [
            {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(f).items()} for f in self.features]}

    @classmethod
    def from_dict(cls, data) -> "Schema":
        features = tuple(Feature(**{**f, "categories": tuple(f["categories"]) if f.get("categories") is not None else None})
                         for f in data["features"])
        return cls(features, data["layout"])


def derive(estimator, sample=None, feature_names=None) -> Schema:
    from sklearn.utils import get_tags

    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        names = feature_names or [f"x{i}" for i in range(estimator.n_features_in_)]
    nullable = bool(get_tags(estimator).input_tags.allow_nan)
    return Schema(tuple(Feature(str(n), "number", nullable) for n in names), "matrix")

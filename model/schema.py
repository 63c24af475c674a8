"""The inputs a model takes: per feature its name, kind, whether it may be missing, and its known values.

One schema per model, derived from the fitted estimator (`feature_names_in_`, a ColumnTransformer's
column lists, encoders' `categories_`, imputers, estimator tags) and, when one is given, from a sample
of rows. It is stored in the manifest and drives validation, metadata and the OpenAPI document.

The layout says what the estimator is called with: "matrix", a 2-D float64 array (the fast path);
"frame", a pandas DataFrame with the fitted column names; "text", a 1-D array of strings.

scikit-learn and pandas are imported only by `derive`, so reading a schema costs neither.
"""

import dataclasses
import math

KINDS = ("number", "integer", "string", "boolean")
LAYOUTS = ("matrix", "frame", "text")
UNKNOWN = ("accept", "reject")
KIND_SOURCES = ("sample", "estimator", "default")
TEXT_FEATURE = "text"


class SchemaError(ValueError):
    """The schema cannot be derived or read; the message names the feature or the problem."""


@dataclasses.dataclass(frozen=True)
class Feature:
    name: str
    kind: str
    nullable: bool = False
    categories: tuple | None = None
    unknown: str = "accept"
    kind_source: str = "estimator"
    dtype: str | None = None

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["categories"] = None if self.categories is None else list(self.categories)
        return data


_FEATURE_KEYS = tuple(f.name for f in dataclasses.fields(Feature))


@dataclasses.dataclass(frozen=True)
class Schema:
    features: tuple[Feature, ...]
    layout: str

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def to_dict(self) -> dict:
        return {"layout": self.layout, "features": [f.to_dict() for f in self.features]}

    @classmethod
    def from_dict(cls, data) -> "Schema":
        if not isinstance(data, dict):
            raise SchemaError("schema must be a JSON object with layout and features")
        extra = sorted(set(data) - {"layout", "features"})
        if extra:
            raise SchemaError(f"schema has unknown keys: {', '.join(extra)}")
        layout = data.get("layout")
        if layout not in LAYOUTS:
            raise SchemaError(f"schema.layout {layout!r} is unknown (one of {', '.join(LAYOUTS)})")
        entries = data.get("features")
        if not isinstance(entries, list) or not entries:
            raise SchemaError("schema.features must be a non-empty list")
        features = tuple(_feature_from_dict(i, entry) for i, entry in enumerate(entries))
        names = [f.name for f in features]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise SchemaError(f"schema.features names {', '.join(duplicated)} more than once")
        if layout == "text" and (len(features) != 1 or features[0].kind != "string"):
            raise SchemaError("schema.layout text takes exactly one feature, of kind string")
        return cls(features, layout)

    @classmethod
    def numbers(cls, names, nullable: bool = False) -> "Schema":
        """A plain numeric model's schema (matrix layout) when nothing more is known."""
        return cls(tuple(Feature(str(n), "number", nullable=nullable) for n in names), "matrix")


def _feature_from_dict(index: int, entry) -> Feature:
    where = f"schema.features[{index}]"
    if not isinstance(entry, dict):
        raise SchemaError(f"{where} must be an object")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{where}.name must be a non-empty string")
    where = f"{where} ({name})"
    extra = sorted(set(entry) - set(_FEATURE_KEYS))
    if extra:
        raise SchemaError(f"{where} has unknown keys: {', '.join(extra)}")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise SchemaError(f"{where}.kind {kind!r} is unknown (one of {', '.join(KINDS)})")
    nullable = entry.get("nullable", False)
    if not isinstance(nullable, bool):
        raise SchemaError(f"{where}.nullable must be true or false")
    unknown = entry.get("unknown", "accept")
    if unknown not in UNKNOWN:
        raise SchemaError(f"{where}.unknown {unknown!r} is unknown (accept or reject)")
    source = entry.get("kind_source", "estimator")
    if source not in KIND_SOURCES:
        raise SchemaError(f"{where}.kind_source {source!r} is unknown (one of {', '.join(KIND_SOURCES)})")
    dtype = entry.get("dtype")
    if dtype is not None and (not isinstance(dtype, str) or not dtype):
        raise SchemaError(f"{where}.dtype must be a pandas dtype name or null")
    categories = entry.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not categories:
            raise SchemaError(f"{where}.categories must be a non-empty list or null")
        wrong = [c for c in categories if not _fits_kind(c, kind)]
        if wrong:
            raise SchemaError(f"{where}.categories holds values that are not {kind}s: {wrong[:3]!r}")
        categories = tuple(categories)
    return Feature(name, kind, nullable, categories, unknown, source, dtype)


def _fits_kind(value, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "integer":
        return isinstance(value, int)
    return isinstance(value, (int, float)) and math.isfinite(value)


# -- Derivation from a fitted estimator -------------------------------------------------------------

_ABSORBS, _PASSES, _REFUSES = "absorbs", "passes", "refuses"  # what a step does with a missing value
_ACCEPTING_UNKNOWN = ("ignore", "infrequent_if_exist", "warn", "use_encoded_value")


@dataclasses.dataclass
class _Column:
    """What the estimator says about one input column."""
    kind: str = "number"
    source: str = "default"
    categories: tuple | None = None
    unknown: str = "accept"
    nullable: bool = True
    told_strongly: bool = False


def derive(estimator, sample=None, feature_names=None) -> Schema:
    """The schema of a fitted estimator; `sample` (a DataFrame) refines kinds and missing values.

    `feature_names` names the features when the estimator has no `feature_names_in_` (a manifest's list).
    Raises SchemaError for an unfitted estimator or a sample that lacks a column the model needs.
    """
    estimator = _check_fitted(estimator)
    steps = _steps(estimator)
    if _takes_text(steps[0]):
        return Schema((Feature(TEXT_FEATURE, "string", kind_source="estimator"),), "text")
    names = _names(estimator, feature_names, sample)
    columns, by_name = _columns(steps, names)
    features = [_feature(name, column) for name, column in zip(names, columns)]
    if sample is not None:
        features = _refine(features, columns, sample, estimator)
    frame = by_name or any(f.kind not in ("number", "integer") or f.dtype is not None for f in features)
    return Schema(tuple(features), "frame" if frame else "matrix")


def _check_fitted(estimator):
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(estimator, "predict"):
        raise SchemaError(f"a {type(estimator).__name__} is not a model: it has no predict method")
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise SchemaError(f"the {type(estimator).__name__} is not fitted: fit it before packaging") from None
    except TypeError as e:
        raise SchemaError(f"a {type(estimator).__name__} is not a scikit-learn estimator: {e}") from None
    # A fitted search wraps the model it chose; that model decides the inputs.
    chosen = getattr(estimator, "best_estimator_", None)
    return estimator if chosen is None else chosen


def _steps(estimator) -> list:
    """The estimator as a flat list of steps (a Pipeline's, nested ones unrolled)."""
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        return [s for _, step in estimator.steps if step not in (None, "passthrough") for s in _steps(step)]
    return [estimator]


def _takes_text(step) -> bool:
    """One string per row: a text vectorizer (Count/Tfidf/Hashing) and anything else tagged that way."""
    from sklearn.utils import get_tags

    try:
        tags = get_tags(step).input_tags
    except Exception:  # a third-party object without tags takes a matrix
        return False
    return bool(tags.string and not tags.two_d_array)


def _names(estimator, feature_names, sample) -> list[str]:
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    count = getattr(estimator, "n_features_in_", None)
    if feature_names is not None and (count is None or len(feature_names) == count):
        return [str(n) for n in feature_names]
    if sample is not None and (count is None or len(sample.columns) == count):
        return [str(n) for n in sample.columns]
    if count is None:
        raise SchemaError(f"the {type(estimator).__name__} does not say how many features it takes")
    return [f"x{i}" for i in range(count)]


def _columns(steps: list, names: list[str]) -> tuple[list[_Column], bool]:
    """What each input column goes through; and whether a ColumnTransformer selects columns by name."""
    from sklearn.compose import ColumnTransformer

    first, rest = steps[0], steps[1:]
    if not isinstance(first, ColumnTransformer):
        return [_route(steps, position) for position in range(len(names))], False
    routes: list[list] = [[] for _ in names]
    by_name = False
    for _, transformer, spec in first.transformers_:
        selected, named = _selected(spec, names)
        by_name = by_name or named
        if transformer == "drop":
            continue
        for position, index in enumerate(selected):
            routes[index].append((_steps(transformer) if transformer != "passthrough" else [], position))
    columns = []
    for column_routes in routes:
        if not column_routes:  # dropped: the model never looks at it
            columns.append(_Column(kind="number", source="default", nullable=True))
            continue
        found = [_route(inner, position, rest) for inner, position in column_routes]
        column = next((c for c in found if c.told_strongly), found[0])
        column.nullable = all(c.nullable for c in found)
        column.unknown = "reject" if any(c.unknown == "reject" for c in found) else "accept"
        columns.append(column)
    return columns, by_name


def _selected(spec, names: list[str]) -> tuple[list[int], bool]:
    """The column indices a fitted ColumnTransformer entry selects, and whether it selects by name."""
    import numpy as np

    if isinstance(spec, slice):
        if isinstance(spec.start, str) or isinstance(spec.stop, str):
            start = names.index(spec.start) if spec.start is not None else 0
            stop = names.index(spec.stop) + 1 if spec.stop is not None else len(names)
            return list(range(start, stop)), True
        return list(range(len(names)))[spec], False
    values = np.atleast_1d(np.asarray(spec))
    if values.dtype.kind == "b":
        return [int(i) for i in np.flatnonzero(values)], False
    if values.dtype.kind in "iu":
        return [int(i) for i in values], False
    return [names.index(str(v)) for v in values], True


def _route(steps: list, position: int | None, rest: list = ()) -> _Column:
    """Kind, categories and missing values of the column at `position` of `steps`' input, then `rest`."""
    column = _Column(nullable=_accepts_nan(steps, position, rest))
    weak = None
    for step, at in _positions(steps, position):
        told = _tells(step, at)
        if told is not None and told[3]:
            column.kind, column.categories, column.unknown, _ = told
            column.source, column.told_strongly = "estimator", True
            return column
        weak = weak or (told and told[0])
    if weak is not None:
        column.kind, column.source = weak, "estimator"
    return column


def _accepts_nan(steps: list, position: int | None, rest) -> bool:
    """Whether a missing value in this column reaches the end without a step refusing it."""
    # Past a ColumnTransformer its columns are concatenated: positions no longer name this column.
    for step, at in [*_positions(steps, position), *((s, None) for s in rest)]:
        flow = _nan_flow(step, at)
        if flow != _PASSES:
            return flow == _ABSORBS
    return True


def _positions(steps: list, position: int | None):
    """Each step with the position this column has in its input (None once a step reshuffles columns)."""
    for step in steps:
        yield step, position
        if not _keeps_positions(step):
            position = None


def _is_identity(step) -> bool:
    from sklearn.preprocessing import FunctionTransformer

    # A fitted ColumnTransformer's "passthrough" is a FunctionTransformer without a function.
    return step in ("passthrough", None) or (isinstance(step, FunctionTransformer) and step.func is None)


def _is_imputer(step) -> bool:
    return type(step).__module__.startswith("sklearn.impute") and hasattr(step, "missing_values")


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _keeps_positions(step) -> bool:
    from sklearn.base import OneToOneFeatureMixin

    if _is_identity(step) or isinstance(step, OneToOneFeatureMixin):
        return True
    return _is_imputer(step) and not getattr(step, "add_indicator", False)


def _encoder_categories(step, position):
    """The categories an encoder (OneHotEncoder, OrdinalEncoder, TargetEncoder) knows for this column."""
    categories = getattr(step, "categories_", None)
    if not isinstance(categories, list) or position is None or position >= len(categories):
        return None
    return categories[position]


def _tells(step, position) -> tuple | None:
    """(kind, categories, unknown, strong) for what `step` says about its input column, or None."""
    if _is_identity(step):
        return None
    values = _encoder_categories(step, position)
    if values is not None:
        kind, categories = _categories(values)
        unknown = "accept" if getattr(step, "handle_unknown", "ignore") in _ACCEPTING_UNKNOWN else "reject"
        return kind, categories, unknown, True
    if isinstance(getattr(step, "categories_", None), list):
        return None  # an encoder, but this column's place in its input is no longer known
    if _takes_text(step):
        return "string", None, "accept", True
    if _is_imputer(step):
        # An imputer takes strings too ("most_frequent", "constant"); what follows it says more.
        statistics = getattr(step, "statistics_", None)
        numeric = statistics is None or statistics.dtype.kind in "biuf"
        return ("number" if numeric else "string"), None, "accept", False
    return "number", None, "accept", True


def _nan_flow(step, position) -> str:
    """Whether `step` turns a missing value into a real one, passes it on, or fails on it."""
    from sklearn.utils import get_tags

    if _is_identity(step):
        return _PASSES
    if _is_imputer(step) and _is_nan(step.missing_values):
        return _ABSORBS
    if isinstance(getattr(step, "categories_", None), list):
        values = _encoder_categories(step, position)
        ordinal = hasattr(step, "encoded_missing_value")
        if values is not None and any(_is_nan(v) for v in values.tolist()):
            return _PASSES if ordinal and _is_nan(step.encoded_missing_value) else _ABSORBS
        handle_unknown = getattr(step, "handle_unknown", None)
        if handle_unknown == "use_encoded_value":
            return _PASSES if _is_nan(step.unknown_value) else _ABSORBS
        if handle_unknown is None or handle_unknown in _ACCEPTING_UNKNOWN:
            return _ABSORBS  # unknown values (a missing one among them) are encoded as none of the known
        return _REFUSES
    try:
        return _PASSES if get_tags(step).input_tags.allow_nan else _REFUSES
    except Exception:  # a third-party object without tags: assume the worst
        return _REFUSES


def _categories(values) -> tuple[str, tuple | None]:
    """The kind and the JSON-native known values of an encoder's categories (missing ones left out)."""
    known = [v.item() if hasattr(v, "item") else v for v in values.tolist()]
    known = [v for v in known if v is not None and not _is_nan(v)]
    kind = {"b": "boolean", "i": "integer", "u": "integer", "f": "number"}.get(values.dtype.kind) or _kind_of(known)
    if kind is None or not known or not all(_fits_kind(v, kind) for v in known):
        return kind or "string", None
    return kind, tuple(known)


def _kind_of(values: list) -> str | None:
    """The kind of a list of Python values (None when it is empty or mixed)."""
    for kind in ("boolean", "string", "integer", "number"):
        if values and all(_fits_kind(v, kind) for v in values):
            return kind
    return None


def _feature(name: str, column: _Column) -> Feature:
    return Feature(name, column.kind, column.nullable, column.categories, column.unknown, column.source)


# -- Refinement from a sample of rows ----------------------------------------------------------------

_DEFAULT_DTYPES = {"number": "float64", "integer": "int64", "boolean": "bool", "string": "object"}


def _refine(features: list[Feature], columns: list[_Column], sample, estimator) -> list[Feature]:
    """Kinds from the sample's dtypes; a column with gaps is nullable when the model predicted on them."""
    lacking = [f.name for f in features if f.name not in sample.columns]
    if lacking:
        raise SchemaError(f"the sample lacks columns the model needs: {', '.join(lacking)}")
    rows = sample[[f.name for f in features]]
    predicts = _predicts(estimator, rows)
    refined = []
    for feature, column in zip(features, columns):
        series = rows[feature.name]
        kind, dtype, categories = _sample_kind(feature.name, series)
        nullable = feature.nullable or bool(predicts and series.isna().any())
        if kind is None or column.categories is not None:
            # An encoder compares values with the categories it was fitted on: its kind is the one that works.
            refined.append(dataclasses.replace(feature, nullable=nullable, dtype=dtype))
            continue
        refined.append(dataclasses.replace(feature, kind=kind, kind_source="sample", nullable=nullable, dtype=dtype,
                                           categories=feature.categories or categories))
    return refined


def _predicts(estimator, rows) -> bool:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            estimator.predict(rows)
        except Exception:
            return False
    return True


def _sample_kind(name: str, series) -> tuple[str | None, str | None, tuple | None]:
    """(kind, dtype to rebuild it with when not the kind's default, categories of a categorical column)."""
    import pandas as pd
    from pandas.api import types

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        kind, categories = _categories(dtype.categories.to_numpy())
        return kind, "category", categories
    if types.is_bool_dtype(dtype):
        kind = "boolean"
    elif types.is_integer_dtype(dtype):
        kind = "integer"
    elif types.is_float_dtype(dtype):
        kind = "number"
    elif types.is_object_dtype(dtype):
        return _kind_of([v.item() if hasattr(v, "item") else v for v in series.dropna().tolist()]), None, None
    elif types.is_string_dtype(dtype):
        kind = "string"
    else:
        raise SchemaError(f"sample column {name} has dtype {dtype}, which JSON cannot carry: "
                          "convert it to numbers, strings or booleans")
    return kind, (None if str(dtype) == _DEFAULT_DTYPES[kind] else str(dtype)), None

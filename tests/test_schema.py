"""Input schemas derived from fitted estimators: each claim checked against what the model really does."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from model import artifact, manifest, schema, training
from model.schema import Feature, Schema, SchemaError
from tests import models

CHURN = {
    "layout": "frame",
    "features": [
        {"name": "tenure_months", "kind": "number", "nullable": True, "categories": None, "unknown": "accept",
         "kind_source": "estimator", "dtype": None},
        {"name": "monthly_charges", "kind": "number", "nullable": True, "categories": None, "unknown": "accept",
         "kind_source": "estimator", "dtype": None},
        {"name": "contract", "kind": "string", "nullable": False, "categories": list(models.CONTRACTS),
         "unknown": "reject", "kind_source": "estimator", "dtype": None},
        {"name": "payment", "kind": "string", "nullable": True, "categories": list(models.PAYMENTS),
         "unknown": "accept", "kind_source": "estimator", "dtype": None},
        # Passed through: nothing in the fitted pipeline says it was a boolean.
        {"name": "senior", "kind": "number", "nullable": False, "categories": None, "unknown": "accept",
         "kind_source": "default", "dtype": None},
    ],
}


def _predicts(estimator, rows) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            estimator.predict(rows)
        except ValueError:
            return False
    return True


def _with_missing(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    broken = frame.head(20).copy()
    if broken[column].dtype != object:
        broken[column] = broken[column].astype(float if broken[column].dtype.kind in "biuf" else object)
    broken.loc[broken.index[:5], column] = np.nan
    return broken


def test_derive_churn_pipeline_from_the_estimator_alone():
    assert schema.derive(models.churn_pipeline().estimator).to_dict() == CHURN


def test_derive_churn_pipeline_with_a_sample_takes_kinds_from_its_dtypes():
    fitted = models.churn_pipeline()
    derived = schema.derive(fitted.estimator, fitted.rows)
    by_name = {f.name: f for f in derived.features}
    assert by_name["senior"] == Feature("senior", "boolean", kind_source="sample")
    assert by_name["tenure_months"] == Feature("tenure_months", "number", nullable=True, kind_source="sample")
    # The encoders' categories outrank the sample: they are what values are compared with.
    assert by_name["contract"] == Feature("contract", "string", categories=models.CONTRACTS, unknown="reject")
    assert derived.layout == "frame"


@pytest.mark.parametrize("column", [f["name"] for f in CHURN["features"]])
def test_churn_nullable_is_exactly_where_the_model_takes_a_missing_value(column):
    fitted = models.churn_pipeline()
    nullable = {f.name: f.nullable for f in schema.derive(fitted.estimator).features}
    assert _predicts(fitted.estimator, _with_missing(fitted.rows, column)) is nullable[column]


@pytest.mark.parametrize(("column", "value"), [("contract", "three-year"), ("payment", "bitcoin")])
def test_churn_unknown_says_whether_the_encoder_answers_an_unseen_category(column, value):
    fitted = models.churn_pipeline()
    unknown = {f.name: f.unknown for f in schema.derive(fitted.estimator).features}
    rows = fitted.rows.head(3).copy()
    rows[column] = value
    assert _predicts(fitted.estimator, rows) is (unknown[column] == "accept")


def test_derive_nan_regressor_every_feature_takes_missing_values():
    fitted = models.nan_regressor()
    derived = schema.derive(fitted.estimator)
    assert derived.layout == "matrix"
    assert derived.features == tuple(Feature(n, "number", nullable=True) for n in ("rooms", "area_m2", "age_years"))
    assert _predicts(fitted.estimator, fitted.rows.to_numpy()) and fitted.rows.isna().any().all()


def test_derive_text_classifier_takes_one_string_per_row():
    derived = schema.derive(models.text_classifier().estimator)
    assert derived.to_dict() == {"layout": "text", "features": [
        {"name": "text", "kind": "string", "nullable": False, "categories": None, "unknown": "accept",
         "kind_source": "estimator", "dtype": None}]}


def test_trained_iris_gets_a_numeric_matrix_schema(trained):
    manifest_data = json.loads((trained("logreg") / "manifest.json").read_text())
    names = load_iris().feature_names
    assert Schema.from_dict(manifest_data["schema"]) == Schema(tuple(Feature(n, "number") for n in names), "matrix")
    model = artifact.load(trained("logreg"), artifact.LoadPolicy())
    assert model.schema.names == names and model.allow_nan is False
    assert not _predicts(model.estimator, np.array([[np.nan, 3.5, 1.4, 0.2]]))


def test_a_model_fitted_on_an_array_gets_positional_names():
    data = load_iris()
    derived = schema.derive(LogisticRegression(max_iter=500).fit(data.data, data.target))
    assert derived.names == ["x0", "x1", "x2", "x3"] and derived.layout == "matrix"
    named = schema.derive(LogisticRegression(max_iter=500).fit(data.data, data.target), feature_names=list("abcd"))
    assert named.names == ["a", "b", "c", "d"]


def test_an_imputer_in_front_makes_a_matrix_model_nullable_and_a_scaler_does_not():
    data = load_iris()
    imputed = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)).fit(data.data, data.target)
    scaled = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(data.data, data.target)
    row = np.array([[np.nan, 3.5, 1.4, 0.2]])
    assert all(f.nullable for f in schema.derive(imputed).features) and _predicts(imputed, row)
    assert not any(f.nullable for f in schema.derive(scaled).features) and not _predicts(scaled, row)


def test_encoders_fitted_with_missing_values_or_encoding_unknowns_take_them():
    frame = pd.DataFrame({"colour": ["red", "blue", np.nan, "red"], "size": ["s", "m", "l", "m"],
                          "grade": [1, 2, 3, 2]})
    columns = ColumnTransformer([
        ("colour", OneHotEncoder(), ["colour"]),
        ("size", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["size"]),
        ("grade", OneHotEncoder(handle_unknown="error"), ["grade"]),
    ])
    estimator = make_pipeline(columns, LinearRegression()).fit(frame, [1.0, 2.0, 3.0, 4.0])
    derived = {f.name: f for f in schema.derive(estimator).features}
    assert derived["colour"] == Feature("colour", "string", nullable=True, categories=("blue", "red"), unknown="reject")
    assert derived["size"] == Feature("size", "string", nullable=True, categories=("l", "m", "s"))
    assert derived["grade"] == Feature("grade", "integer", categories=(1, 2, 3), unknown="reject")
    for column in derived:
        assert _predicts(estimator, _with_missing(frame, column)) is derived[column].nullable


def test_a_string_imputer_before_an_encoder_leaves_the_encoder_to_tell():
    frame = pd.DataFrame({"city": ["paris", np.nan, "rome", "oslo"], "n": [1.0, 2.0, 3.0, 4.0]})
    strings = make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="error"))
    estimator = make_pipeline(ColumnTransformer([("city", strings, ["city"]), ("n", "passthrough", ["n"])]),
                              LinearRegression()).fit(frame, [1.0, 2.0, 3.0, 4.0])
    city, n = schema.derive(estimator).features
    assert city == Feature("city", "string", nullable=True, categories=("oslo", "paris", "rome"), unknown="reject")
    assert n == Feature("n", "number", kind_source="default")


def test_a_column_transformer_by_position_on_numbers_stays_a_matrix():
    data = load_iris()
    columns = ColumnTransformer([("scaled", StandardScaler(), [0, 1])], remainder="passthrough")
    derived = schema.derive(make_pipeline(columns, LogisticRegression(max_iter=500)).fit(data.data, data.target))
    assert derived.layout == "matrix"
    assert [f.kind_source for f in derived.features] == ["estimator", "estimator", "default", "default"]


def test_sample_dtypes_the_server_must_rebuild_are_recorded():
    frame = pd.DataFrame({"count": pd.array([1, None, 3, 4], dtype="Int64"),
                          "tier": pd.Categorical(["a", "b", "a", "b"]), "x": [0.5, 1.5, 2.5, 3.5]})
    estimator = LinearRegression().fit(frame[["x"]].assign(count=[1, 2, 3, 4], tier=[0, 1, 0, 1]), [1, 2, 3, 4])
    derived = {f.name: f for f in schema.derive(estimator, frame).features}
    assert derived["count"].kind == "integer" and derived["count"].dtype == "Int64"
    assert derived["tier"].dtype == "category" and derived["tier"].categories == ("a", "b")
    assert derived["x"].dtype is None and derived["x"].kind_source == "sample"


def test_derive_refuses_what_it_cannot_describe():
    with pytest.raises(SchemaError, match="not fitted"):
        schema.derive(make_pipeline(StandardScaler(), LogisticRegression()))
    with pytest.raises(SchemaError, match="has no predict method"):
        schema.derive(StandardScaler().fit([[1.0], [2.0]]))
    fitted = models.churn_pipeline()
    with pytest.raises(SchemaError, match="sample lacks columns the model needs: contract, senior"):
        schema.derive(fitted.estimator, fitted.rows.drop(columns=["contract", "senior"]))


@pytest.mark.parametrize("factory", [models.churn_pipeline, models.text_classifier, models.nan_regressor])
def test_a_bare_joblib_file_gets_the_schema_of_its_estimator(factory, tmp_path):
    fitted = factory()
    path = models.dump(fitted, tmp_path)
    loaded = artifact.load(path, artifact.LoadPolicy(allow_pickle=True))
    assert loaded.schema == schema.derive(fitted.estimator)
    assert loaded.features == loaded.schema.names


def test_a_manifest_without_a_schema_gets_one_from_the_estimator(model_dir):
    data = json.loads((model_dir / "manifest.json").read_text())
    written = Schema.from_dict(data.pop("schema"))
    (model_dir / "manifest.json").write_text(json.dumps(data))
    assert artifact.load(model_dir, artifact.LoadPolicy()).schema == written


def test_a_manifest_whose_schema_disagrees_with_its_features_is_refused(model_dir):
    from model.errors import ModelIntegrityError

    data = json.loads((model_dir / "manifest.json").read_text())
    data["schema"]["features"][0]["name"] = "petal colour"
    (model_dir / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelIntegrityError, match="do not name the same features"):
        artifact.load(model_dir, artifact.LoadPolicy())
    data["schema"]["features"][0]["kind"] = "colour"
    (model_dir / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelIntegrityError, match="kind 'colour' is unknown"):
        manifest.read(model_dir / "manifest.json")


@pytest.mark.parametrize("factory", [models.churn_pipeline, models.text_classifier, models.nan_regressor])
def test_schema_survives_json_round_trip(factory):
    fitted = factory()
    for sample in (None, fitted.rows if isinstance(fitted.rows, pd.DataFrame) else None):
        derived = schema.derive(fitted.estimator, sample)
        assert Schema.from_dict(json.loads(json.dumps(derived.to_dict()))) == derived


def _feature(**changes) -> dict:
    return {"name": "a", "kind": "string", "nullable": False, "categories": ["x"], "unknown": "accept",
            "kind_source": "estimator", "dtype": None, **changes}


@pytest.mark.parametrize(("data", "message"), [
    ([], "must be a JSON object"),
    ({"layout": "grid", "features": [_feature()]}, "layout 'grid' is unknown"),
    ({"layout": "frame", "features": []}, "features must be a non-empty list"),
    ({"layout": "frame", "features": [_feature()], "extra": 1}, "unknown keys: extra"),
    ({"layout": "frame", "features": [_feature(name="")]}, r"features\[0\].name must be a non-empty string"),
    ({"layout": "frame", "features": [_feature(), _feature()]}, "names a more than once"),
    ({"layout": "frame", "features": [_feature(kind="text")]}, r"\(a\).kind 'text' is unknown"),
    ({"layout": "frame", "features": [_feature(nullable="yes")]}, r"\(a\).nullable must be true or false"),
    ({"layout": "frame", "features": [_feature(categories=["x", 2])]}, "categories holds values that are not strings: \\[2\\]"),
    ({"layout": "frame", "features": [_feature(kind="number", categories=[float("nan")])]}, "not numbers"),
    ({"layout": "frame", "features": [_feature(kind="integer", categories=[True])]}, "not integers"),
    ({"layout": "frame", "features": [_feature(unknown="maybe")]}, "unknown 'maybe' is unknown"),
    ({"layout": "frame", "features": [_feature(kind_source="guess")]}, "kind_source 'guess' is unknown"),
    ({"layout": "frame", "features": [_feature(dtype=3)]}, "dtype must be a pandas dtype name"),
    ({"layout": "frame", "features": [_feature(colour="red")]}, r"\(a\) has unknown keys: colour"),
    ({"layout": "text", "features": [_feature(kind="number", categories=None)]}, "text takes exactly one feature"),
])
def test_from_dict_refuses_a_bad_schema_naming_the_problem(data, message):
    with pytest.raises(SchemaError, match=message):
        Schema.from_dict(data)


def test_training_writes_the_held_out_rows_as_examples(trained):
    from sklearn.model_selection import train_test_split

    from model import examples

    directory = trained("logreg")
    data = json.loads((directory / "manifest.json").read_text())
    rows = examples.read(directory, data["examples"])
    iris = load_iris()
    held_out = train_test_split(iris.data, iris.target, test_size=0.2, stratify=iris.target, random_state=training.SEED)[1]
    assert data["examples"]["rows"] == len(rows) == len(held_out)
    assert [[r[n] for n in iris.feature_names] for r in rows] == held_out.tolist()

"""Validating rows against a model's input schema: what passes, what it becomes, and every refusal's message."""

import math

import numpy as np
import pytest

from inference.errors import InvalidInput
from inference.inputs import concat
from inference.rows import from_columns, from_instances
from model.schema import Feature, Schema

NUMERIC = Schema((Feature("a", "number"), Feature("b", "number"), Feature("c", "number")), "matrix")
MIXED = Schema((
    Feature("tenure", "integer", nullable=True),
    Feature("charges", "number", nullable=True),
    Feature("contract", "string", categories=("month", "year"), unknown="reject"),
    Feature("payment", "string", nullable=True, categories=("card", "bank")),
    Feature("senior", "boolean"),
    Feature("extra", "number", kind_source="default"),
), "frame")
TEXT = Schema((Feature("text", "string"),), "text")


def matrix(rows, schema=NUMERIC, max_rows=100):
    return from_instances(schema, rows, max_rows).matrix


def refusal(schema, rows, max_rows=100) -> str:
    with pytest.raises(InvalidInput) as caught:
        from_instances(schema, rows, max_rows)
    return caught.value.message


def test_matrix_rows_accept_arrays_and_objects_in_feature_order():
    out = matrix([[1, 2.5, 3], {"c": 3, "a": 1, "b": 2.5}])
    assert out.dtype == np.float64
    assert out.tolist() == [[1.0, 2.5, 3.0], [1.0, 2.5, 3.0]]


@pytest.mark.parametrize("rows, message", [
    ({"a": 1}, "must be an array of rows, got object"),
    ([], "is empty"),
    ([[1, 2, 3], [1, 2]], "row 1 has 2 values; the model expects 3 features"),
    ([[1, "2", 3]], "row 0, feature 1 (b) must be a number, got string"),
    ([[1, True, 3]], "row 0, feature 1 (b) must be a number, got boolean"),
    ([[1, None, 3]], "row 0, feature 1 (b) is missing (null or NaN), and this model cannot take a missing value for it"),
    ([[1, [2], 3]], "must be a number, got array"),
    (["abc"], "row 0 must be an array of 3 numbers or an object"),
    ([{"a": 1, "b": 2, "z": 3}], "unknown feature(s) 'z'"),
    ([{"a": 1, "b": 2}], "missing feature(s) 'c'"),
    ([[1, 10 ** 400, 3]], "too large to be a 64-bit float"),
    ([[1, float("inf"), 3]], "row 0, feature 1 (b) is infinite"),
    ([[1, 2, 3], [1, float("nan"), 3]], "row 1, feature 1 (b) is missing"),
    ([[1, 2, 4e38]], "row 0, feature 2 (c) is larger in magnitude than"),
])
def test_matrix_rows_are_refused_with_a_message_naming_the_problem(rows, message):
    assert message in refusal(NUMERIC, rows)


def test_missing_values_pass_exactly_where_the_model_takes_them():
    schema = Schema((Feature("a", "number"), Feature("b", "number", nullable=True)), "matrix")
    out = matrix([[1, None], [2, float("nan")]], schema)
    assert np.isnan(out[:, 1]).all() and out[:, 0].tolist() == [1.0, 2.0]
    assert "feature 0 (a) is missing" in refusal(schema, [[None, 1]])
    assert "feature 0 (a) is infinite" in refusal(schema, [[float("-inf"), 1]])


def test_integer_features_take_whole_numbers_only():
    schema = Schema((Feature("n", "integer"), Feature("x", "number")), "matrix")
    assert matrix([[3, 0.5], [4.0, 1]], schema).tolist() == [[3.0, 0.5], [4.0, 1.0]]
    assert "row 0, feature 0 (n) must be an integer, got 3.5" in refusal(schema, [[3.5, 1]])


def test_a_column_nothing_typed_reads_booleans_as_numbers():
    schema = Schema((Feature("flag", "number", kind_source="default"), Feature("x", "number")), "matrix")
    assert matrix([[True, 1], [False, 2]], schema).tolist() == [[1.0, 1.0], [0.0, 2.0]]
    assert "feature 1 (x) must be a number, got boolean" in refusal(schema, [[True, True]])


def test_the_row_limit_holds():
    assert "3 rows, more than the limit of 2" in refusal(NUMERIC, [[1, 2, 3]] * 3, max_rows=2)


MIXED_ROW = {"tenure": 3, "charges": 80.5, "contract": "month", "payment": "card", "senior": False, "extra": 1}


def test_mixed_rows_become_typed_columns():
    rows = from_instances(MIXED, [MIXED_ROW, [None, None, "year", None, True, False]], 10)
    columns = rows.columns
    assert rows.count == 2 and rows.matrix is None
    assert columns["tenure"].dtype == np.float64 and columns["tenure"][0] == 3 and math.isnan(columns["tenure"][1])
    assert columns["charges"].dtype == np.float64 and math.isnan(columns["charges"][1])
    assert columns["contract"].dtype == object and columns["contract"].tolist() == ["month", "year"]
    assert columns["payment"][0] == "card" and math.isnan(columns["payment"][1])
    assert columns["senior"].dtype == bool and columns["senior"].tolist() == [False, True]
    assert columns["extra"].tolist() == [1.0, 0.0]


def test_whole_integer_columns_stay_integers():
    assert from_instances(MIXED, [MIXED_ROW], 10).columns["tenure"].dtype == np.int64


@pytest.mark.parametrize("change, message", [
    ({"contract": 5}, "row 0, feature 2 (contract) must be a string, got number"),
    ({"charges": "80"}, "row 0, feature 1 (charges) must be a number, got string"),
    ({"senior": 1}, "row 0, feature 4 (senior) must be true or false, got number"),
    ({"senior": None}, "row 0, feature 4 (senior) is missing (null or NaN), and this model cannot take"),
    ({"contract": "weekly"},
     "row 0, feature 2 (contract) is 'weekly', a category the model does not know; known: 'month', 'year'"),
    ({"tenure": 2.5}, "row 0, feature 0 (tenure) must be an integer, got 2.5"),
    ({"tenure": 2 ** 70}, "outside the 64-bit integer range"),
    ({"charges": float("inf")}, "is infinite"),
])
def test_mixed_rows_are_refused_naming_row_feature_and_kind(change, message):
    assert message in refusal(MIXED, [{**MIXED_ROW, **change}])


def test_an_unknown_category_passes_where_the_encoder_ignores_it():
    rows = from_instances(MIXED, [{**MIXED_ROW, "payment": "cheque"}], 10)
    assert rows.columns["payment"].tolist() == ["cheque"]


def test_text_rows_take_strings_in_three_shapes():
    rows = from_instances(TEXT, ["free money", ["lunch?"], {"text": "hi"}], 10)
    assert rows.columns["text"].tolist() == ["free money", "lunch?", "hi"]
    assert "row 1 must be a string (the text)" in refusal(TEXT, ["ok", 5])
    assert "got null" in refusal(TEXT, [None])


def test_columns_of_a_v2_request_are_checked_like_rows():
    columns = {name: [value] for name, value in MIXED_ROW.items()}
    assert from_columns(MIXED, columns, 10).columns["contract"].tolist() == ["month"]
    with pytest.raises(InvalidInput, match="missing 'extra'"):
        from_columns(MIXED, {k: v for k, v in columns.items() if k != "extra"}, 10)
    with pytest.raises(InvalidInput, match="same number of rows"):
        from_columns(MIXED, {**columns, "senior": [True, False]}, 10)
    with pytest.raises(InvalidInput, match=r"row 0, feature 2 \(contract\) must be a string"):
        from_columns(MIXED, {**columns, "contract": [1]}, 10)


def test_concat_keeps_rows_in_order_across_requests():
    first = from_instances(MIXED, [MIXED_ROW], 10)
    second = from_instances(MIXED, [{**MIXED_ROW, "tenure": None, "contract": "year"}], 10)
    merged = concat([first, second])
    assert merged.count == 2
    assert merged.columns["contract"].tolist() == ["month", "year"]
    assert merged.columns["tenure"][0] == 3 and math.isnan(merged.columns["tenure"][1])
    numeric = concat([from_instances(NUMERIC, [[1, 2, 3]], 5), from_instances(NUMERIC, [[4, 5, 6]], 5)])
    assert numeric.matrix.tolist() == [[1, 2, 3], [4, 5, 6]]

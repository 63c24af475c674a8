"""Unit tests of request parsing: every rejection names what was wrong."""

import asyncio

import numpy as np
import pytest

from service import parsing
from service.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

FEATURES = ["a", "b", "c"]


def matrix(rows, allow_nan=False, max_rows=100):
    return parsing.to_matrix(rows, FEATURES, max_rows, allow_nan)


def test_to_matrix_accepts_arrays_and_objects_in_feature_order():
    out = matrix([[1, 2.5, 3], {"c": 3, "a": 1, "b": 2.5}])
    assert out.dtype == np.float64
    assert out.tolist() == [[1.0, 2.5, 3.0], [1.0, 2.5, 3.0]]


@pytest.mark.parametrize("rows, message", [
    ({"a": 1}, "must be an array of rows, got object"),
    ([], "is empty"),
    ([[1, 2, 3], [1, 2]], "row 1 has 2 values; the model expects 3 features"),
    ([[1, "2", 3]], "row 0, feature 1 (b) must be a number, got string"),
    ([[1, True, 3]], "must be a number, got boolean"),
    ([[1, None, 3]], "must be a number, got null"),
    ([[1, [2], 3]], "must be a number, got array"),
    (["abc"], "row 0 must be an array of 3 numbers or an object"),
    ([{"a": 1, "b": 2, "z": 3}], "unknown feature(s) 'z'"),
    ([{"a": 1, "b": 2}], "missing feature(s) 'c'"),
    ([[1, 10 ** 400, 3]], "too large to be a 64-bit float"),
    ([[1, float("inf"), 3]], "row 0, feature 1 is infinite"),
    ([[1, 2, 3], [1, float("nan"), 3]], "row 1, feature 1 is NaN"),
])
def test_to_matrix_rejects_with_a_message_naming_the_problem(rows, message):
    with pytest.raises(BadRequest) as caught:
        matrix(rows)
    assert message in caught.value.message
    assert caught.value.code == 400


def test_to_matrix_lets_nan_through_only_for_models_that_take_it():
    assert np.isnan(matrix([[1, float("nan"), 3]], allow_nan=True)[0, 1])
    with pytest.raises(BadRequest, match="infinite"):
        matrix([[1, float("-inf"), 3]], allow_nan=True)


def test_to_matrix_enforces_the_row_limit():
    with pytest.raises(BadRequest, match="3 rows, more than the limit of 2"):
        matrix([[1, 2, 3]] * 3, max_rows=2)


@pytest.mark.parametrize("body, message", [
    (b"", "request body is empty"),
    (b"   ", "request body is empty"),
    (b'{"a": ', "malformed JSON"),
    (b'{"a": 1, "a": 2}', "appears twice"),
    (b"\xff\xff\xff", "not valid UTF-8"),
    (b"[" * 100_000, "malformed JSON"),
])
def test_parse_json_rejects_bad_bodies(body, message):
    with pytest.raises(BadRequest, match=message):
        parsing.parse_json(body)


def test_parse_json_reads_nan_literals_as_floats():
    assert np.isnan(parsing.parse_json(b'{"x": NaN}')["x"])


@pytest.mark.parametrize("content_type", [None, "", "application/json", "application/json; charset=utf-8",
                                          "application/vnd.api+json", "APPLICATION/JSON"])
def test_check_content_type_accepts_json_or_none(content_type):
    parsing.check_content_type(content_type)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/octet-stream"])
def test_check_content_type_refuses_explicit_non_json(content_type):
    with pytest.raises(UnsupportedMediaType) as caught:
        parsing.check_content_type(content_type)
    assert caught.value.code == 415 and content_type in caught.value.message


class ChunkedBody:
    """Hands out a body of `size` bytes in 64 KiB chunks, counting what was taken."""

    def __init__(self, size, chunk=64 * 1024):
        self.left, self.chunk, self.read_bytes = size, chunk, 0

    async def receive(self):
        n = min(self.chunk, self.left)
        self.left -= n
        self.read_bytes += n
        return b"x" * n


def read(body, content_length, limit):
    return asyncio.run(parsing.read_body(body.receive, content_length, limit))


def test_read_body_refuses_declared_oversize_without_reading():
    body = ChunkedBody(10_000)
    with pytest.raises(PayloadTooLarge):
        read(body, 10_000, limit=1000)
    assert body.read_bytes == 0


def test_read_body_stops_reading_an_undeclared_oversize_body_just_past_the_limit():
    body = ChunkedBody(10_000_000)
    with pytest.raises(PayloadTooLarge) as caught:
        read(body, None, limit=100_000)
    assert body.read_bytes == 128 * 1024, "reading stops at the first chunk past the limit"
    assert caught.value.code == 413


def test_read_body_returns_a_body_within_the_limit():
    assert read(ChunkedBody(1000), 1000, limit=1000) == b"x" * 1000

"""Unit tests of reading request bodies: every rejection names what was wrong."""

import asyncio

import numpy as np
import pytest

from service import parsing
from service.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType


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

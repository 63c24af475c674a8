"""Reading request bodies: Content-Type, the size limit, JSON, and boolean parameters.

Every problem raises an HttpError subclass whose message says what was wrong and what was expected.
The rows themselves are checked against the model's schema by `inference.rows`.
"""

import json

from inference.rows import describe
from service.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType


def check_content_type(content_type: str | None) -> None:
    """A missing Content-Type is read as JSON (Triton's client sends none); anything else must be JSON."""
    if not content_type:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("application/json", "text/json") or media.endswith("+json"):
        return
    raise UnsupportedMediaType(f"Content-Type must be application/json, got {media!r} "
                               "(with curl, add -H 'Content-Type: application/json')")


async def read_body(receive, content_length: int | None, limit: int) -> bytes:
    """Reads the body with `await receive()` (b"" at its end); refuses one over `limit` before reading it whole."""
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(limit)
    chunks, size = [], 0
    while True:
        try:
            chunk = await receive()
        except OSError:  # the client went away mid-body: nobody is left to answer, but say so in the log
            raise BadRequest("request body ended before it was complete", {"Connection": "close"}) from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise BadRequest(f"malformed JSON: key {key!r} appears twice in one object")
        obj[key] = value
    return obj


def parse_json(body: bytes):
    if not body.strip():
        raise BadRequest("request body is empty; send a JSON object such as {\"instances\": [[...]]}")
    try:
        return json.loads(body, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise BadRequest("request body is not valid UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise BadRequest(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None
    except ValueError:  # Python refuses integers of more than 4300 digits (sys.int_info)
        raise BadRequest("malformed JSON: a number has too many digits") from None


def flag(params, name: str) -> bool:
    """A boolean request parameter, absent meaning false."""
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f'parameter "{name}" must be true or false, got {describe(value)}')
    return value

"""Errors that carry their HTTP status, and the two JSON shapes clients see.

Plain and KServe V1 routes answer Google's shape, `{"error": {"code", "status", "message"}}`; Open
Inference Protocol (V2) routes answer that protocol's `{"error": "<message>"}`.
"""


class HttpError(Exception):
    """An error with the HTTP status to answer; the message is safe to show the client."""

    code = 500
    status = "INTERNAL"

    def __init__(self, message: str, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def body(self, v2: bool = False) -> dict:
        if v2:
            return {"error": self.message}
        return {"error": {"code": self.code, "status": self.status, "message": self.message}}


class BadRequest(HttpError):
    code, status = 400, "INVALID_ARGUMENT"


class NotFound(HttpError):
    code, status = 404, "NOT_FOUND"


class MethodNotAllowed(HttpError):
    code, status = 405, "METHOD_NOT_ALLOWED"

    def __init__(self, method: str, allowed: tuple[str, ...]):
        super().__init__(f"method {method} is not allowed here; use {' or '.join(allowed)}", {"Allow": ", ".join(allowed)})


class PayloadTooLarge(HttpError):
    code, status = 413, "PAYLOAD_TOO_LARGE"

    def __init__(self, limit: int):
        # The unread rest of the body makes the connection unusable for another request.
        super().__init__(f"request body is larger than the limit of {limit} bytes (MAX_BODY_BYTES)", {"Connection": "close"})


class UnsupportedMediaType(HttpError):
    code, status = 415, "UNSUPPORTED_MEDIA_TYPE"


class ServiceUnavailable(HttpError):
    code, status = 503, "UNAVAILABLE"


class Internal(HttpError):
    """Never carries exception text: the log line does."""

    def __init__(self):
        super().__init__("internal error; the server log has the details")

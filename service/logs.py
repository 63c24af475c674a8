"""One JSON object per line on stdout, in the shape Cloud Logging reads.

Each record has `severity`, `message`, `time`, and, when the request carried `X-Cloud-Trace-Context`
or `traceparent`, `logging.googleapis.com/trace`; fields passed as `extra=` are merged in.
"""

import datetime
import json
import logging
import re
import sys

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d+))?")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


class JsonFormatter(logging.Formatter):
    def __init__(self, static: dict):
        super().__init__()
        self._static = static

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "severity": "WARNING" if record.levelname == "WARN" else record.levelname,
            "message": record.getMessage(),
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "logger": record.name,
            **self._static,
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str, revision: str | None, service: str | None) -> None:
    """Sends the `model` and `request` loggers to stdout as JSON lines; idempotent."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter({k: v for k, v in (("service", service), ("revision", revision)) if v}))
    for name in ("model", "request", "service"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def trace_fields(headers, project: str | None) -> dict:
    """The Cloud Logging trace fields for a request's trace headers (empty when it has none)."""
    trace_id = span_id = None
    match = _CLOUD_TRACE.match(headers.get("X-Cloud-Trace-Context", ""))
    if match:
        trace_id, span_id = match.group(1).lower(), match.group(2)
    else:
        match = _TRACEPARENT.match(headers.get("traceparent", "").strip())
        if match:
            trace_id, span_id = match.group(1), match.group(2)
    if not trace_id:
        return {}
    fields = {"logging.googleapis.com/trace": f"projects/{project}/traces/{trace_id}" if project else trace_id}
    if span_id:
        fields["logging.googleapis.com/spanId"] = span_id
    return fields

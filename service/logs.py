"""One JSON object per line on stdout, in the shape Cloud Logging reads.

Each record has `severity`, `message`, `time`, and, when the request carried `X-Cloud-Trace-Context`
or `traceparent`, `logging.googleapis.com/trace`; fields passed as `extra=` are merged in.
"""

import datetime
import json
import logging
import re
import sys
import threading
import time

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d+))?")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


class JsonFormatter(logging.Formatter):
    def __init__(self, static: dict):
        super().__init__()
        self._static = static

    def format(self, record: logging.LogRecord) -> str:
        severity = "WARNING" if record.levelname == "WARN" else record.levelname
        entry = _entry(severity, record.getMessage(), record.created, record.name, self._static)
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str, revision: str | None, service: str | None) -> None:
    """Sends the `model` and `request` loggers to stdout as JSON lines; idempotent."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(_static(revision, service)))
    for name in ("model", "request"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def _entry(severity: str, message: str, created: float, logger: str, static: dict) -> dict:
    """The fields every line starts with, whichever writer writes it."""
    stamp = datetime.datetime.fromtimestamp(created, datetime.UTC).isoformat()
    return {"severity": severity, "message": message, "time": stamp, "logger": logger, **static}


def _static(revision: str | None, service: str | None) -> dict:
    return {k: v for k, v in (("service", service), ("revision", revision)) if v}


class RequestLog:
    """The one line per request, written straight to stdout in the same shape as the logger's lines.

    It runs on every request, so it skips the logging module's record and formatter machinery, which
    cost about three times as much; errors with stack traces still go through the `request` logger.
    """

    def __init__(self, level: str, revision: str | None, service: str | None):
        self.enabled = logging.getLevelName(level) <= logging.INFO
        self._static = _static(revision, service)
        self._lock = threading.Lock()

    def write(self, severity: str, message: str, fields: dict) -> None:
        entry = _entry(severity, message, time.time(), "request", self._static)
        line = json.dumps({**entry, **fields}, default=str)
        with self._lock:  # one write per line, never interleaved with another thread's
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


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

"""A Cloud Logging API stand-in: `entries:list` (what `gcloud logging read` calls), fed by revision output.

Each line a revision's process writes becomes a LogEntry the way Cloud Run's log agent makes one: a
JSON object line becomes `jsonPayload`, with the special fields of structured logging (`severity`,
`time`, `httpRequest`, `logging.googleapis.com/trace`, ...) lifted into the entry; any other line
becomes `textPayload`. Filters are read by the query language of log_query.py. One store serves the
Cloud Run fake's revisions and the project stand-ins (log-based metrics read the same entries).
"""

import copy
import datetime
import itertools
import json
import threading

from tests.fakes.google_api import ApiError, stamp
from tests.fakes.log_query import SEVERITIES, matches, parse

HOST = "logging-fake"
# Fields of a JSON line that Cloud Run's agent moves into the LogEntry itself.
_SPECIAL = {"httpRequest": "httpRequest", "logging.googleapis.com/trace": "trace",
            "logging.googleapis.com/spanId": "spanId", "logging.googleapis.com/trace_sampled": "traceSampled",
            "logging.googleapis.com/insertId": "insertId", "logging.googleapis.com/labels": "labels",
            "logging.googleapis.com/operation": "operation", "logging.googleapis.com/sourceLocation": "sourceLocation"}


def _instant(text):
    """RFC 3339 text (any offset, any fraction) as the API writes it, or None when it is not one."""
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp(moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC))


def revision_labels(project, service, revision, region):
    """The monitored resource labels of a Cloud Run revision."""
    return {"project_id": project, "service_name": service, "revision_name": revision, "location": region,
            "configuration_name": service}


class LogStore:
    """Log entries of one project, oldest first; `write_line` is what a revision's output feeds."""

    def __init__(self, project):
        self.project = project
        self.entries = []
        self.lock = threading.Lock()
        self._ids = itertools.count(1)

    def entry(self, line, resource_labels, stream="stdout"):
        """The LogEntry Cloud Run's agent makes of one line a container wrote to `stream`."""
        received = stamp(datetime.datetime.now(datetime.UTC))
        entry = {"logName": f"projects/{self.project}/logs/run.googleapis.com%2F{stream}",
                 "resource": {"type": "cloud_run_revision", "labels": dict(resource_labels)},
                 "insertId": f"{next(self._ids):016x}", "receiveTimestamp": received,
                 "timestamp": received, "severity": "DEFAULT"}
        try:
            payload = json.loads(line)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            entry["textPayload"] = line
            return entry
        severity = str(payload.pop("severity", "DEFAULT")).upper()
        entry["severity"] = severity if severity in SEVERITIES else "DEFAULT"
        for key in ("time", "timestamp"):
            when = payload.pop(key, None)
            if isinstance(when, str) and _instant(when):
                entry["timestamp"] = _instant(when)
        for key, lifted in _SPECIAL.items():
            if key in payload:
                entry[lifted] = payload.pop(key)
        entry["jsonPayload"] = payload
        return entry

    def write_line(self, line, resource_labels, stream="stdout"):
        entry = self.entry(line, resource_labels, stream)
        with self.lock:
            self.entries.append(entry)
        return entry

    def matching(self, log_filter):
        tree = parse(log_filter)
        with self.lock:
            entries = list(self.entries)
        return [e for e in entries if matches(tree, e)]

    def snapshot(self):
        with self.lock:
            return copy.deepcopy(self.entries)

    def restore(self, snapshot):
        with self.lock:
            self.entries[:] = copy.deepcopy(snapshot)


class LoggingApi:
    """`POST /v2/entries:list` for FakeCloudRun.add_api; pages with pageSize/pageToken like the real one."""

    def __init__(self, store):
        self.store = store

    def __call__(self, method, host, path, query, read_body):
        if host != HOST or path != "/v2/entries:list":
            return None
        if method != "POST":
            raise ApiError(404, f"{method} {path} is not supported.")
        body = read_body()
        names = body.get("resourceNames") or []
        if f"projects/{self.store.project}" not in names:
            raise ApiError(403, f"The caller does not have permission on {', '.join(names) or 'no resource'}.")
        entries = self.store.matching(body.get("filter", ""))
        order = (body.get("orderBy") or "timestamp asc").lower()
        entries.sort(key=lambda e: (e["timestamp"], e["insertId"]), reverse=order == "timestamp desc")
        size = min(int(body.get("pageSize") or 1000), 1000)
        start = int(body.get("pageToken") or 0)
        page = entries[start:start + size]
        answer = {"entries": page} if page else {}
        if start + size < len(entries):
            answer["nextPageToken"] = str(start + size)
        return answer

"""A Cloud Logging API stand-in: `entries:list` (what `gcloud logging read` calls), fed by revision output.

Each line a revision's process writes becomes a LogEntry the way Cloud Run's log agent makes one: a
JSON object line becomes `jsonPayload`, with `severity`, `time`, `httpRequest` and the
`logging.googleapis.com/trace` fields lifted into the entry; any other line becomes `textPayload`.
Filters are the Logging query language's conjunctions of comparisons (`a.b="x" AND severity>=ERROR`),
which is what gcloud and ./deploy.sh send; anything else is refused with 400, as the real API refuses
what it cannot parse.
"""

import datetime
import itertools
import json
import re
import threading

from tests.fakes.cloud_run_state import ApiError

_ENTRIES_LIST = re.compile(r"^/v2/entries:list$")
_SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")
# path, operator, value (quoted, or a bare word)
_TERM = re.compile(r'^\s*([A-Za-z_][\w.]*(?:"[^"]*")?[\w.]*)\s*(>=|<=|!=|=|>|<|:)\s*("(?:[^"\\]|\\.)*"|[^\s()"]+)\s*$')
_AND = re.compile(r'\s+AND\s+(?=(?:[^"]*"[^"]*")*[^"]*$)')


def _now():
    return datetime.datetime.now(datetime.UTC)


def _stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _normalise_time(text):
    """RFC 3339 text (any offset, any fraction) as a comparable UTC string."""
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"Invalid timestamp in filter: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return _stamp(moment.astimezone(datetime.UTC))


class LogStore:
    """Log entries of one project, newest last; `write_line` is what a revision's output feeds."""

    def __init__(self, project):
        self.project = project
        self.entries = []
        self.lock = threading.Lock()
        self._ids = itertools.count(1)

    def write_line(self, line, resource_labels, stream="stdout"):
        """One line of a revision's stdout/stderr, as Cloud Run's agent turns it into a LogEntry."""
        received = _now()
        entry = {
            "logName": f"projects/{self.project}/logs/run.googleapis.com%2F{stream}",
            "resource": {"type": "cloud_run_revision", "labels": dict(resource_labels)},
            "insertId": f"{next(self._ids):016x}",
            "receiveTimestamp": _stamp(received),
            "severity": "DEFAULT",
        }
        try:
            payload = json.loads(line)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            severity = str(payload.pop("severity", "DEFAULT")).upper()
            entry["severity"] = severity if severity in _SEVERITIES else "DEFAULT"
            stamp = payload.pop("time", None) or payload.pop("timestamp", None)
            entry["timestamp"] = _normalise_time(stamp) if isinstance(stamp, str) else _stamp(received)
            if isinstance(payload.get("httpRequest"), dict):
                entry["httpRequest"] = payload.pop("httpRequest")
            for field, key in (("logging.googleapis.com/trace", "trace"), ("logging.googleapis.com/spanId", "spanId")):
                if field in payload:
                    entry[key] = payload.pop(field)
            entry["jsonPayload"] = payload
        else:
            entry["timestamp"] = _stamp(received)
            entry["textPayload"] = line
        with self.lock:
            self.entries.append(entry)

    def matching(self, log_filter):
        terms = _parse(log_filter)
        with self.lock:
            entries = list(self.entries)
        return [e for e in entries if all(_holds(e, term) for term in terms)]


def _parse(log_filter):
    terms = []
    for clause in _AND.split((log_filter or "").strip()) if (log_filter or "").strip() else []:
        clause = clause.strip()
        while clause.startswith("(") and clause.endswith(")"):
            clause = clause[1:-1].strip()
        match = _TERM.match(clause)
        if not match:
            raise ApiError(400, f"Unparseable filter: {clause!r} (this stand-in takes comparisons joined by AND)")
        path, op, value = match.groups()
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"')
        terms.append((path, op, value))
    return terms


def _lookup(entry, path):
    if path == "timestamp":
        return entry.get("timestamp")
    node = entry
    for part in re.findall(r'"[^"]*"|[^.]+', path):
        part = part.strip('"')
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _holds(entry, term):
    path, op, wanted = term
    value = _lookup(entry, path)
    if value is None:
        return op == "!="
    if path == "severity":
        rank = {name: i for i, name in enumerate(_SEVERITIES)}
        left, right = rank.get(str(value), 0), rank.get(wanted.upper(), -1)
        if right < 0:
            raise ApiError(400, f"Unknown severity in filter: {wanted!r}")
    elif path == "timestamp":
        left, right = _normalise_time(str(value)), _normalise_time(wanted)
    else:
        left, right = ("true" if value else "false") if isinstance(value, bool) else str(value), wanted
    if op == ":":
        return str(right).lower() in str(left).lower()
    return {"=": left == right, "!=": left != right, ">=": left >= right, "<=": left <= right,
            ">": left > right, "<": left < right}[op]


class LoggingApi:
    """`POST /v2/entries:list` for FakeCloudRun.add_api; pages with pageSize/pageToken like the real one."""

    def __init__(self, store):
        self.store = store

    def __call__(self, method, host, path, query, read_body):
        if not _ENTRIES_LIST.match(path):
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

"""Cloud Logging v2 entries:list stand-in (what `gcloud logging read` calls) over entries a test adds,
with the part of the Logging query language that deploy.sh and the log-based metrics use:
comparisons (=, !=, >, >=, <, <=, and : for "has") of a field path with a quoted string, a number
or *, joined by AND. Anything else is refused with 400, as the real API refuses a filter it cannot parse.
"""

import copy
import datetime
import re

from tests.fakes.google_api import GoogleError, StandIn, route

_TERM = re.compile(r'\s*([A-Za-z_][\w.]*)\s*(>=|<=|!=|=|>|<|:)\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|\*)\s*')
_AND = re.compile(r"AND(?=\s)")
_SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")
_MISSING = object()
# Fields the logging agent lifts out of a JSON line into the LogEntry itself (Cloud Run's structured logs).
_LIFTED = {"severity": "severity", "time": "timestamp", "httpRequest": "httpRequest",
           "logging.googleapis.com/trace": "trace", "logging.googleapis.com/spanId": "spanId"}


def parse(text):
    """[(path, operator, value)] of a conjunction; raises GoogleError(400) on anything else."""
    terms, position = [], 0
    while True:
        match = _TERM.match(text, position)
        if not match:
            raise GoogleError(400, f"Unparseable filter: {text[position:position + 40]!r}")
        path, operator, raw = match.groups()
        value = raw if raw == "*" else (raw[1:-1].replace('\\"', '"') if raw.startswith('"') else float(raw))
        terms.append((path, operator, value))
        position = match.end()
        if position == len(text):
            return terms
        conjunction = _AND.match(text, position)
        if not conjunction:
            raise GoogleError(400, f"Unparseable filter near {text[position:position + 40]!r}")
        position = conjunction.end()


def field(entry, path):
    value = entry
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _ordered(path, value):
    if path == "severity":
        return _SEVERITIES.index(value) if value in _SEVERITIES else -1
    if path in ("timestamp", "receiveTimestamp") and isinstance(value, str):
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def _holds(entry, path, operator, wanted):
    actual = field(entry, path)
    if wanted == "*":
        return actual is not _MISSING
    if actual is _MISSING or isinstance(actual, (dict, list)):
        return operator == "!="
    if isinstance(wanted, float):
        if isinstance(actual, bool) or not isinstance(actual, (int, float)):
            return False
    else:
        actual = str(actual)
    if operator == ":":
        return str(wanted).lower() in str(actual).lower()
    left, right = _ordered(path, actual), _ordered(path, wanted)
    return {"=": left == right, "!=": left != right, ">": left > right, ">=": left >= right,
            "<": left < right, "<=": left <= right}[operator]


def selects(filter_text, entry):
    return all(_holds(entry, *term) for term in parse(filter_text))


def cloud_run_entry(line, project, service, revision, region="europe-west1"):
    """The LogEntry Cloud Run makes of one JSON line the function prints."""
    payload = dict(line)
    entry = {"logName": f"projects/{project}/logs/run.googleapis.com%2Fstdout",
             "resource": {"type": "cloud_run_revision", "labels": {
                 "project_id": project, "service_name": service, "revision_name": revision,
                 "configuration_name": service, "location": region}},
             "insertId": f"{id(payload):x}", "receiveTimestamp": payload.get("time")}
    for key, lifted in _LIFTED.items():
        if key in payload:
            entry[lifted] = payload.pop(key)
    entry["jsonPayload"] = payload
    return entry


class LogEntries(StandIn):
    host = "logging-fake"

    def __init__(self, world):
        super().__init__(world)
        self.state.update(entries=[])

    def add(self, entry):
        self.state["entries"].append(copy.deepcopy(entry))

    @route("POST", r"^/v2/entries:list$")
    def list(self, query, body):
        for name in body.get("resourceNames", []):
            self.world.check_project(name.removeprefix("projects/"))
        terms = body.get("filter", "")
        found = [e for e in self.state["entries"] if not terms or selects(terms, e)]
        found.sort(key=lambda e: e.get("timestamp", ""), reverse=body.get("orderBy", "timestamp asc").endswith("desc"))
        return {"entries": found[:body.get("pageSize", 1000)]} if found else {}

"""A Cloud Monitoring API stand-in: `projects.timeSeries.list` for Cloud Run's request metrics.

It is fed by the requests the Cloud Run fake's front actually served (`RequestMetrics.record`), so a
canary's figures are those of the traffic the traffic table really sent it. As Cloud Monitoring
does, it answers `run.googleapis.com/request_count` (DELTA, INT64, labels `response_code` and
`response_code_class`) and `run.googleapis.com/request_latencies` (DELTA, DISTRIBUTION in ms with
exponential buckets) per `cloud_run_revision`, one point per sampling period, only for periods that
have ended, newest point first, paged with `nextPageToken`. It wants a bearer token and a filter
naming one metric type; it refuses aggregation parameters (not implemented here) rather than
ignoring them.
"""

import datetime
import math
import re
import threading
import time

from tests.fakes.google_api import ApiError, stamp

HOST = "monitoring-fake"  # the Monitoring configuration stand-in (monitoring_config.py) answers here too
_TIME_SERIES = re.compile(r"^/v3/projects/([^/]+)/timeSeries$")
_TERM = re.compile(r'^\s*([\w.]+)\s*(=|!=)\s*"([^"]*)"\s*$')
_AND = re.compile(r'\s+AND\s+(?=(?:[^"]*"[^"]*")*[^"]*$)')
REQUEST_COUNT = "run.googleapis.com/request_count"
REQUEST_LATENCIES = "run.googleapis.com/request_latencies"
# Cloud Run's latency distribution: exponential buckets, in milliseconds.
BUCKETS = {"numFiniteBuckets": 100, "growthFactor": 1.4, "scale": 1.0}


def _stamp(seconds):
    return stamp(datetime.datetime.fromtimestamp(seconds, datetime.UTC))


def _seconds(text, name):
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise ApiError(400, f"Field {name} had an invalid value of {text!r}: must be RFC 3339.") from None
    return moment.replace(tzinfo=moment.tzinfo or datetime.UTC).timestamp()


def _bucket(value_ms):
    if value_ms < BUCKETS["scale"]:
        return 0
    index = int(math.log(value_ms / BUCKETS["scale"]) / math.log(BUCKETS["growthFactor"])) + 1
    return min(index, BUCKETS["numFiniteBuckets"] + 1)


class RequestMetrics:
    """Every request the front served: (time, service, revision, status code, latency in ms)."""

    def __init__(self, project, region, period_s=60.0, delay_s=0.0):
        self.project = project
        self.region = region
        self.period_s = period_s  # Cloud Run writes one point per minute; tests use shorter periods
        self.delay_s = delay_s  # how long after a period ends its point becomes readable
        self.records = []
        self.lock = threading.Lock()

    def record(self, service, revision, code, latency_ms, when=None):
        with self.lock:
            self.records.append((time.time() if when is None else when, service, revision, int(code),
                                 float(latency_ms)))

    def clear(self):
        with self.lock:
            self.records.clear()

    def _series(self, metric, start, end):
        """{labels key: {period start: [records]}} for periods that ended inside (start, end]."""
        visible = time.time() - self.delay_s
        with self.lock:
            records = list(self.records)
        grouped = {}
        for when, service, revision, code, latency in records:
            period = math.floor(when / self.period_s) * self.period_s
            closes = period + self.period_s
            if closes > visible or not start < closes <= end:
                continue
            key = (service, revision, str(code), f"{code // 100}xx")
            grouped.setdefault(key, {}).setdefault(period, []).append(latency)
        out = []
        for (service, revision, code, code_class), periods in sorted(grouped.items()):
            resource = {"type": "cloud_run_revision", "labels": {
                "project_id": self.project, "service_name": service, "revision_name": revision,
                "location": self.region, "configuration_name": service}}
            labels = {"response_code": code, "response_code_class": code_class, "route_type": "default"}
            points = [{"interval": {"startTime": _stamp(p), "endTime": _stamp(p + self.period_s)},
                       "value": _value(metric, values)}
                      for p, values in sorted(periods.items(), reverse=True)]
            out.append({"metric": {"type": metric, "labels": labels}, "resource": resource,
                        "metricKind": "DELTA", "valueType": "INT64" if metric == REQUEST_COUNT else "DISTRIBUTION",
                        "unit": "1" if metric == REQUEST_COUNT else "ms", "points": points})
        return out


def _value(metric, latencies):
    if metric == REQUEST_COUNT:
        return {"int64Value": str(len(latencies))}
    mean = sum(latencies) / len(latencies)
    counts = [0] * (BUCKETS["numFiniteBuckets"] + 2)
    for value in latencies:
        counts[_bucket(value)] += 1
    while counts and counts[-1] == 0:  # the API leaves trailing empty buckets out
        counts.pop()
    return {"distributionValue": {
        "count": str(len(latencies)), "mean": mean,
        "sumOfSquaredDeviation": sum((v - mean) ** 2 for v in latencies),
        "bucketOptions": {"exponentialBuckets": dict(BUCKETS)},
        "bucketCounts": [str(c) for c in counts]}}


def _filter(text):
    terms = []
    for clause in _AND.split(text.strip()):
        match = _TERM.match(clause.strip().strip("()"))
        if not match:
            raise ApiError(400, f"Could not parse filter {text!r} at {clause!r}.")
        terms.append(match.groups())
    types = [value for path, op, value in terms if path == "metric.type" and op == "="]
    if len(types) != 1:
        raise ApiError(400, "A filter must specify exactly one metric type (metric.type = \"...\").")
    return types[0], [t for t in terms if t[0] != "metric.type"]


def _field(series, path):
    parts = path.split(".")
    if parts[:2] == ["resource", "type"]:
        return series["resource"]["type"]
    if parts[0] in ("resource", "metric") and len(parts) == 3 and parts[1] == "labels":
        return series[parts[0]]["labels"].get(parts[2])
    if parts[0] == "resource" and len(parts) == 2:  # the short form resource.revision_name
        return series["resource"]["labels"].get(parts[1])
    raise ApiError(400, f"Unsupported filter field {path!r}.")


class MonitoringApi:
    """`GET /v3/projects/P/timeSeries` for FakeCloudRun.add_api (it is given the request's headers)."""

    wants_headers = True

    def __init__(self, metrics, token, page_size=100000):
        self.metrics = metrics
        self.token = token
        self.page_size = page_size  # the real API's most; tests lower it to exercise nextPageToken
        self.calls = 0

    def __call__(self, method, host, path, query, read_body, headers=None):
        match = _TIME_SERIES.match(path)
        if host != HOST or not match:
            return None
        self.calls += 1
        if (headers or {}).get("Authorization") != f"Bearer {self.token}":
            raise ApiError(401, "Request had invalid authentication credentials. Expected OAuth 2 access "
                                "token, login cookie or other valid authentication credential.")
        if method != "GET":
            raise ApiError(404, f"{method} {path} is not supported.")
        if match.group(1) != self.metrics.project:
            raise ApiError(403, f"Permission monitoring.timeSeries.list denied (or the resource may not exist) "
                                f"on projects/{match.group(1)}.")
        args = {k: v[0] for k, v in query.items()}
        unsupported = sorted(k for k in args if k.startswith(("aggregation.", "secondaryAggregation.")))
        if unsupported:
            raise ApiError(400, f"This stand-in does not implement {', '.join(unsupported)}.")
        if "filter" not in args:
            raise ApiError(400, "Field filter had an invalid value: a filter is required.")
        if "interval.endTime" not in args:
            raise ApiError(400, "Field interval.endTime had an invalid value: an end time is required.")
        end = _seconds(args["interval.endTime"], "interval.endTime")
        start = _seconds(args["interval.startTime"], "interval.startTime") if "interval.startTime" in args else end
        metric, terms = _filter(args["filter"])
        if metric not in (REQUEST_COUNT, REQUEST_LATENCIES):
            return {}
        series = [s for s in self.metrics._series(metric, start, end)
                  if all((_field(s, path) == value) == (op == "=") for path, op, value in terms)]
        size = min(int(args.get("pageSize") or self.page_size), self.page_size)
        offset = int(args.get("pageToken") or 0)
        page = series[offset:offset + size]
        answer = {"timeSeries": page, "unit": "1" if metric == REQUEST_COUNT else "ms"} if page else {}
        if offset + size < len(series):
            answer["nextPageToken"] = str(offset + size)
        return answer

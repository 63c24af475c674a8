"""Cloud Logging v2 stand-in for log-based metrics (projects.metrics), validated as the API does:
a filter it can parse, a DISTRIBUTION with a value extractor and buckets, label extractors for
declared labels only. It adds what the server adds (times, the metric descriptor's name and type)."""

import copy
import re

from tests.fakes.google_api import ApiError, StandIn, now, proto3, route
from tests.fakes.log_query import parse
from tests.fakes.logging_api import HOST

_NAME = re.compile(r"^[A-Za-z0-9_.\-/]{1,100}$")
_EXTRACTOR = re.compile(r"^(EXTRACT\([\w.]+\)|REGEXP_EXTRACT\([\w.]+, \".*\"\))$")
_METRICS = r"^/v2/projects/([^/]+)/metrics"


def _checked(metric):
    if not _NAME.match(metric.get("name", "")):
        raise ApiError(400, f"Invalid metric name {metric.get('name')!r}.")
    if not metric.get("filter"):
        raise ApiError(400, "A log-based metric needs a filter.")
    parse(metric["filter"])
    descriptor = metric.setdefault("metricDescriptor", {})
    descriptor.setdefault("metricKind", "DELTA")
    descriptor.setdefault("valueType", "INT64")
    if descriptor["metricKind"] != "DELTA":
        raise ApiError(400, "Log-based metrics must be DELTA metrics.")
    if descriptor["valueType"] == "DISTRIBUTION":
        if not _EXTRACTOR.match(metric.get("valueExtractor", "")):
            raise ApiError(400, "A DISTRIBUTION metric needs a valueExtractor EXTRACT(field) or REGEXP_EXTRACT.")
        kinds = [k for k in ("linearBuckets", "exponentialBuckets", "explicitBuckets") if k in metric.get("bucketOptions", {})]
        if len(kinds) != 1:
            raise ApiError(400, "A DISTRIBUTION metric needs exactly one kind of bucketOptions.")
        bounds = metric["bucketOptions"].get("explicitBuckets", {}).get("bounds")
        if bounds is not None and any(a >= b for a, b in zip(bounds, bounds[1:])):
            raise ApiError(400, "explicitBuckets.bounds must increase.")
    elif metric.get("valueExtractor") or metric.get("bucketOptions"):
        raise ApiError(400, "valueExtractor and bucketOptions belong to DISTRIBUTION metrics.")
    declared = {label["key"] for label in descriptor.get("labels", [])}
    for key, extractor in (metric.get("labelExtractors") or {}).items():
        if key not in declared or not _EXTRACTOR.match(extractor):
            raise ApiError(400, f"labelExtractors[{key}] needs a declared label and EXTRACT(field).")
    return metric


class LoggingMetrics(StandIn):
    host = HOST

    def __init__(self, world):
        super().__init__(world)
        self.state.update(metrics={})

    def _stored(self, project, metric, created=None):
        metric = _checked(copy.deepcopy(metric))
        kind = f"logging.googleapis.com/user/{metric['name']}"
        metric["metricDescriptor"].update(name=f"projects/{project}/metricDescriptors/{kind}", type=kind)
        metric.update(createTime=created or now(), updateTime=now())
        for label in metric["metricDescriptor"].get("labels", []):
            if label.get("valueType") == "STRING":  # the enum's zero value, left out like any default
                del label["valueType"]
        metric = proto3(metric)
        self.state["metrics"][metric["name"]] = metric
        return metric

    @route("GET", _METRICS + r"$")
    def list(self, project, query, body):
        self.world.check_project(project)
        metrics = [self.state["metrics"][name] for name in sorted(self.state["metrics"])]
        return {"metrics": metrics} if metrics else {}

    @route("POST", _METRICS + r"$", write=True)
    def create(self, project, query, body):
        self.world.check_project(project)
        if body.get("name") in self.state["metrics"]:
            raise ApiError(409, f"Metric {body['name']} already exists.")
        return self._stored(project, body)

    @route("GET", _METRICS + r"/([^:]+)$")
    def get(self, project, name, query, body):
        self.world.check_project(project)
        if name not in self.state["metrics"]:
            raise ApiError(404, f"Metric {name} does not exist.")
        return self.state["metrics"][name]

    @route("PUT", _METRICS + r"/([^:]+)$", write=True)
    def update(self, project, name, query, body):  # creates it if missing, as projects.metrics.update does
        self.world.check_project(project)
        if body.get("name", name) != name:
            raise ApiError(400, f"The metric's name {body.get('name')!r} is not {name!r}.")
        created = self.state["metrics"].get(name, {}).get("createTime")
        return self._stored(project, {**body, "name": name}, created)

    @route("DELETE", _METRICS + r"/([^:]+)$", write=True)
    def delete(self, project, name, query, body):
        self.get(project, name, query, body)
        del self.state["metrics"][name]
        return {}

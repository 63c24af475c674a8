"""Cloud Run's request metrics per revision, read from Cloud Monitoring's REST API (timeSeries.list).

gcloud has no command that reads time series, so this calls the API itself (release.rest) with
gcloud's access token (`gcloud auth print-access-token`; the caller needs roles/monitoring.viewer).
It goes where gcloud would: CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING if set (gcloud's own endpoint
override), else https://monitoring.googleapis.com/, through gcloud's HTTP proxy when the environment
sets one (CLOUDSDK_PROXY_TYPE=http, CLOUDSDK_PROXY_ADDRESS, CLOUDSDK_PROXY_PORT), else through the
usual https_proxy/http_proxy variables.

Metrics: `run.googleapis.com/request_count` (summed; 5xx by the `response_code_class` label) and
`run.googleapis.com/request_latencies` (distributions merged, p99 interpolated within buckets), for
the `cloud_run_revision` resources of one service. Cloud Run writes a point a minute and points
appear up to a few minutes late, which is why a watch should last well beyond that.
"""

import datetime
import os
import time
from dataclasses import dataclass, field

from release import rest
from release.errors import ReleaseError

REQUEST_COUNT = "run.googleapis.com/request_count"
REQUEST_LATENCIES = "run.googleapis.com/request_latencies"
_TOKEN_LIFE_S = 600  # gcloud's tokens last an hour; ask again well before that


@dataclass
class Figures:
    """What one revision served in a window: requests, 5xx answers, and its latency histogram."""

    requests: int = 0
    errors: int = 0
    buckets: list = field(default_factory=list)  # (lower ms, upper ms, count)

    @property
    def error_rate(self):
        return self.errors / self.requests if self.requests else 0.0

    def percentile(self, share):
        """Latency at `share` (0.99 for p99) in ms, interpolated inside its bucket; None without data."""
        total = sum(count for _, _, count in self.buckets)
        if not total:
            return None
        rank, seen = share * total, 0
        for lower, upper, count in sorted(self.buckets):
            if count and seen + count >= rank:
                return lower + (upper - lower) * (rank - seen) / count
            seen += count
        return sorted(self.buckets)[-1][1]


def _bounds(options):
    """[(lower, upper)] of every bucket, underflow and overflow included, for any bucketOptions."""
    if "linearBuckets" in options:
        spec = options["linearBuckets"]
        edges = [spec.get("offset", 0) + spec.get("width", 1) * i for i in range(int(spec["numFiniteBuckets"]) + 1)]
    elif "exponentialBuckets" in options:
        spec = options["exponentialBuckets"]
        edges = [spec.get("scale", 1) * spec.get("growthFactor", 2) ** i for i in range(int(spec["numFiniteBuckets"]) + 1)]
    elif "explicitBuckets" in options:
        edges = list(options["explicitBuckets"].get("bounds", []))
    else:
        raise ReleaseError(f"Cloud Monitoring sent a distribution with unknown buckets: {sorted(options)}")
    # Latencies are never negative; the overflow bucket is reported at its lower edge.
    return [(0.0, edges[0])] + list(zip(edges, edges[1:])) + [(edges[-1], edges[-1])]


def _stamp(moment):
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Monitoring:
    """Reads one service's request metrics; `token` is a callable returning an access token."""

    def __init__(self, target, token, environ=os.environ):
        self.target = target
        self._token_source = token
        self._token, self._token_at = None, 0.0
        self.api = rest.Api("monitoring", self._bearer, environ)

    def _bearer(self):
        if self._token is None or time.monotonic() - self._token_at > _TOKEN_LIFE_S:
            self._token, self._token_at = self._token_source(), time.monotonic()
        return self._token

    def _series(self, metric, start, end):
        query = {
            "filter": (f'metric.type = "{metric}" AND resource.type = "cloud_run_revision" AND '
                       f'resource.labels.service_name = "{self.target.service}"'),
            "interval.startTime": _stamp(start), "interval.endTime": _stamp(end),
        }
        try:
            return self.api.list(f"v3/projects/{self.target.project}/timeSeries", "timeSeries", query)
        except rest.HttpError as error:
            hint = "; reading metrics needs roles/monitoring.viewer" if error.code in (401, 403) else ""
            raise ReleaseError(f"Cloud Monitoring answered {error.code}: {error.detail}{hint}") from None
        except rest.Unreachable as error:
            raise ReleaseError(f"Cloud Monitoring unreachable: {error}") from None

    def figures(self, start, end):
        """{revision: Figures} for every revision of the service with data in [start, end]."""
        out = {}
        for item in self._series(REQUEST_COUNT, start, end):
            figures = out.setdefault(item["resource"]["labels"].get("revision_name"), Figures())
            count = sum(int(p.get("value", {}).get("int64Value", 0)) for p in item.get("points", []))
            figures.requests += count
            if item.get("metric", {}).get("labels", {}).get("response_code_class") == "5xx":
                figures.errors += count
        for item in self._series(REQUEST_LATENCIES, start, end):
            figures = out.setdefault(item["resource"]["labels"].get("revision_name"), Figures())
            for point in item.get("points", []):
                value = point.get("value", {}).get("distributionValue", {})
                counts = [int(c) for c in value.get("bucketCounts", [])]
                if counts:
                    bounds = _bounds(value.get("bucketOptions", {}))
                    figures.buckets.extend((low, high, n) for (low, high), n in zip(bounds, counts) if n)
        return out

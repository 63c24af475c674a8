"""The monitoring definitions of release/monitoring/ checked on their own (no gcloud): every query
parses as PromQL and names only metrics that exist, the alert thresholds follow from the SLOs they
claim, and the comparison observe relies on tells a change from the API's way of writing defaults."""

import json
import re

import promql_parser
import pytest

from release import observe

SERVICE = "my-predictor"
METRICS, DASHBOARD, POLICIES = observe.definitions(SERVICE)
SLO = json.loads((observe.DEFINITIONS / "alert_policies.json").read_text())["slo"]
# Cloud Run's own metrics the definitions may use, as PromQL names them.
CLOUD_RUN = {"run_googleapis_com:request_count", "run_googleapis_com:request_latencies",
             "run_googleapis_com:container_instance_count", "run_googleapis_com:container_startup_latencies",
             "run_googleapis_com:container_memory_utilizations", "run_googleapis_com:container_cpu_utilizations"}
_HOURS = {"m": 1 / 60, "h": 1, "d": 24}


def _queries():
    for tile in DASHBOARD["mosaicLayout"]["tiles"]:
        for data in tile["widget"].get("xyChart", {}).get("dataSets", []):
            yield tile["widget"]["title"], data["timeSeriesQuery"]["prometheusQuery"]
    for policy in POLICIES:
        for condition in policy["conditions"]:
            yield policy["displayName"], condition["conditionPrometheusQueryLanguage"]["query"]


def _metric_names(query):
    return set(re.findall(r"([a-z_]+:[a-z_]+)\{", query))


def test_every_query_parses_and_names_only_metrics_that_exist():
    defined = {f"logging_googleapis_com:user_{m['name']}" for m in METRICS}
    for title, query in _queries():
        promql_parser.parse(query)
        assert f'service_name="{SERVICE}"' in query, title
        for name in _metric_names(query):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert {name, base} & (defined | CLOUD_RUN), f"{title}: {name} is neither a log-based metric here nor Cloud Run's"


def test_log_metric_names_fit_promql_and_the_service():
    for metric in METRICS:
        assert re.fullmatch(r"my_predictor_[a-z_]+", metric["name"]), metric["name"]
        assert f'resource.labels.service_name="{SERVICE}"' in metric["filter"]


def _hours(window):
    return float(window[:-1]) * _HOURS[window[-1]]


@pytest.mark.parametrize("window", SLO["burn_rate_windows"], ids=lambda w: f"{w['long']}/{w['short']}")
def test_burn_rate_alerts_follow_from_the_availability_objective(window):
    """SRE workbook multiwindow alerts: page when `budget_spent` of the window's error budget would go
    in `long`, and the short window (1/12 of it) confirms it is still burning."""
    budget = 1 - SLO["availability"]
    burn_rate = window["budget_spent"] * SLO["window_days"] * 24 / _hours(window["long"])
    threshold = burn_rate * budget
    (policy,) = [p for p in POLICIES if f"in {window['long']})" in p["displayName"]]
    query = policy["conditions"][0]["conditionPrometheusQueryLanguage"]["query"]
    assert f"[{window['long']}]" in query and f"[{window['short']}]" in query
    assert _hours(window["short"]) == pytest.approx(_hours(window["long"]) / 12)
    found = [float(x) for x in re.findall(r"> ([0-9.]+)", query)]
    assert found == pytest.approx([threshold, threshold]), (found, threshold)
    assert 'response_code_class="5xx"' in query and 'response_code_class!="4xx"' in query


def test_dashboard_and_latency_alert_show_the_same_objectives():
    thresholds = {t["label"]: t["value"] for tile in DASHBOARD["mosaicLayout"]["tiles"]
                  for t in tile["widget"].get("xyChart", {}).get("thresholds", [])}
    assert thresholds["SLO: 0.5% error budget"] == pytest.approx(1 - SLO["availability"])
    assert thresholds["p99 objective"] == SLO["latency_p99_ms"]
    (latency,) = [p for p in POLICIES if "p99" in p["displayName"]]
    assert latency["conditions"][0]["conditionPrometheusQueryLanguage"]["query"].endswith(
        f"> {SLO['latency_p99_ms']}")


def test_tiles_fit_the_grid_without_overlapping():
    taken = set()
    for tile in DASHBOARD["mosaicLayout"]["tiles"]:
        x, y = tile.get("xPos", 0), tile.get("yPos", 0)
        assert x + tile["width"] <= DASHBOARD["mosaicLayout"]["columns"]
        cells = {(i, j) for i in range(x, x + tile["width"]) for j in range(y, y + tile["height"])}
        assert not cells & taken, tile["widget"]["title"]
        taken |= cells


@pytest.mark.parametrize(("wanted", "actual", "same"), [
    ({"a": 0, "b": "", "c": [], "d": {"e": False}}, {}, True),  # defaults the API leaves out
    ({"growthFactor": 2}, {"growthFactor": 2.0}, True),
    ({"count": 5}, {"count": "5"}, True),  # int64 as a JSON string
    ({"a": 1}, {"a": 1, "name": "x", "etag": "y"}, True),  # fields the server adds
    ({"a": 1}, {}, False),
    ({"query": "up > 1"}, {"query": "up > 2"}, False),
    ({"tiles": [{"x": 1}, {"x": 2}]}, {"tiles": [{"x": 1}]}, False),
    ({"enabled": True}, {}, False),
])
def test_matches_tells_changes_from_defaults(wanted, actual, same):
    assert observe.matches(wanted, actual) is same

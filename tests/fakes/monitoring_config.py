"""Cloud Monitoring stand-in for configuration: dashboards (v1) and alert policies (v3).

It refuses what the API refuses: PromQL that does not parse (checked with a real PromQL parser),
tiles outside the grid, widgets with no or two kinds of content, conditions with no or two kinds,
a stale etag; and it adds what the server adds (names, etags, condition names, mutation records).
"""

import copy
import re
import uuid

import promql_parser

from tests.fakes.google_api import ApiError, StandIn, now, proto3, route, unique
from tests.fakes.monitoring_api import HOST

_DURATION = re.compile(r"^\d+s$")
_LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_WIDGETS = ("xyChart", "text", "scorecard", "timeSeriesTable", "alertChart", "logsPanel", "pieChart",
            "collapsibleGroup", "sectionHeader", "singleViewGroup", "blank")
_QUERIES = ("prometheusQuery", "timeSeriesFilter", "timeSeriesFilterRatio", "timeSeriesQueryLanguage")
_CONDITIONS = ("conditionThreshold", "conditionAbsent", "conditionMatchedLog", "conditionMonitoringQueryLanguage",
               "conditionPrometheusQueryLanguage", "conditionSql")
_SEVERITIES = ("CRITICAL", "ERROR", "WARNING")


def _promql(query, where):
    try:
        promql_parser.parse(query)
    except ValueError as error:
        raise ApiError(400, f"{where}: invalid PromQL query: {error}") from None


def _check_dashboard(dashboard):
    if not dashboard.get("displayName"):
        raise ApiError(400, "Field displayName is required.")
    layouts = [k for k in ("gridLayout", "mosaicLayout", "rowLayout", "columnLayout") if k in dashboard]
    if len(layouts) != 1:
        raise ApiError(400, "A dashboard needs exactly one layout.")
    mosaic = dashboard.get("mosaicLayout", {})
    columns = mosaic.get("columns", 12)
    widgets = [(f"mosaicLayout.tiles[{i}].widget", t.get("widget", {})) for i, t in enumerate(mosaic.get("tiles", []))]
    for i, tile in enumerate(mosaic.get("tiles", [])):
        if tile.get("xPos", 0) + tile.get("width", 0) > columns or tile.get("width", 0) <= 0 or tile.get("height", 0) <= 0:
            raise ApiError(400, f"mosaicLayout.tiles[{i}] lies outside the {columns}-column grid.")
    for where, widget in widgets:
        kinds = [k for k in _WIDGETS if k in widget]
        if len(kinds) != 1:
            raise ApiError(400, f"{where} needs exactly one kind of content, has {kinds}.")
        data_sets = widget["xyChart"].get("dataSets", []) if "xyChart" in widget else []
        if "xyChart" in widget and not data_sets:
            raise ApiError(400, f"{where}.xyChart needs dataSets.")
        for j, data in enumerate(data_sets):
            query = data.get("timeSeriesQuery", {})
            if len([k for k in _QUERIES if k in query]) != 1:
                raise ApiError(400, f"{where}.xyChart.dataSets[{j}] needs exactly one query.")
            if "prometheusQuery" in query:
                _promql(query["prometheusQuery"], f"{where}.xyChart.dataSets[{j}]")


def _check_policy(policy, project):
    if not policy.get("displayName"):
        raise ApiError(400, "Field alertPolicy.displayName is required.")
    conditions = policy.get("conditions", [])
    if not 1 <= len(conditions) <= 6:
        raise ApiError(400, "An alert policy needs 1 to 6 conditions.")
    if len(conditions) > 1 and policy.get("combiner") not in ("AND", "OR", "AND_WITH_MATCHING_RESOURCE"):
        raise ApiError(400, "A policy with several conditions needs a combiner.")
    for i, condition in enumerate(conditions):
        kinds = [k for k in _CONDITIONS if k in condition]
        if len(kinds) != 1 or not condition.get("displayName"):
            raise ApiError(400, f"conditions[{i}] needs a displayName and exactly one kind of condition.")
        promql = condition.get("conditionPrometheusQueryLanguage")
        if promql is not None:
            _promql(promql.get("query", ""), f"conditions[{i}]")
            for key in ("duration", "evaluationInterval"):
                if key in promql and not _DURATION.match(promql[key]):
                    raise ApiError(400, f"conditions[{i}].{key} must be a duration like '60s'.")
    if policy.get("severity", "CRITICAL") not in _SEVERITIES:
        raise ApiError(400, f"Unknown severity {policy.get('severity')!r}.")
    for key, value in (policy.get("userLabels") or {}).items():
        if not _LABEL.match(key) or not re.match(r"^[a-z0-9_-]{0,63}$", value):
            raise ApiError(400, f"userLabels {key}={value!r}: lowercase letters, digits, '_' and '-' only.")
    for channel in policy.get("notificationChannels", []):
        if not re.match(rf"^projects/({re.escape(project)}|\d+)/notificationChannels/\d+$", channel):
            raise ApiError(400, f"Notification channel {channel!r} does not exist.")


class MonitoringConfig(StandIn):
    host = HOST

    def __init__(self, world):
        super().__init__(world)
        self.state.update(dashboards={}, policies={})

    # -- dashboards ---------------------------------------------------------------------------
    def _dashboard(self, project, dashboard_id):
        self.world.check_project(project)
        if dashboard_id not in self.state["dashboards"]:
            raise ApiError(404, f"Dashboard projects/{project}/dashboards/{dashboard_id} does not exist.")
        return self.state["dashboards"][dashboard_id]

    @route("GET", r"^/v1/projects/([^/]+)/dashboards$")
    def list_dashboards(self, project, query, body):
        self.world.check_project(project)
        return {"dashboards": list(self.state["dashboards"].values())} if self.state["dashboards"] else {}

    @route("GET", r"^/v1/projects/([^/]+)/dashboards/([^/]+)$")
    def get_dashboard(self, project, dashboard_id, query, body):
        return self._dashboard(project, dashboard_id)

    @route("POST", r"^/v1/projects/([^/]+)/dashboards$", write=True)
    def create_dashboard(self, project, query, body):
        self.world.check_project(project)
        if body.get("etag"):
            raise ApiError(400, "An etag must not be given when creating a dashboard.")
        _check_dashboard(body)
        dashboard_id = str(uuid.uuid4())
        dashboard = proto3({**copy.deepcopy(body), "name": f"projects/{self.world.number}/dashboards/{dashboard_id}",
                            "etag": unique("etag-")})
        if query.get("validateOnly") not in ("True", "true"):
            self.state["dashboards"][dashboard_id] = dashboard
        return dashboard

    @route("PATCH", r"^/v1/projects/([^/]+)/dashboards/([^/]+)$", write=True)
    def update_dashboard(self, project, dashboard_id, query, body):
        found = self._dashboard(project, dashboard_id)
        if body.get("etag") and body["etag"] != found["etag"]:
            raise ApiError(409, "The dashboard was changed since it was read (etag mismatch).", "ABORTED")
        _check_dashboard(body)
        dashboard = proto3({**copy.deepcopy(body), "name": found["name"], "etag": unique("etag-")})
        self.state["dashboards"][dashboard_id] = dashboard
        return dashboard

    # -- alert policies -----------------------------------------------------------------------
    def _policy(self, project, policy_id):
        self.world.check_project(project)
        if policy_id not in self.state["policies"]:
            raise ApiError(404, f"Alert policy projects/{project}/alertPolicies/{policy_id} does not exist.")
        return self.state["policies"][policy_id]

    def _stored(self, policy_id, policy, created=None):
        name = f"projects/{self.world.project_id}/alertPolicies/{policy_id}"
        record = {"mutateTime": now(), "mutatedBy": "deployer@example.com"}
        stored = {**copy.deepcopy(policy), "name": name, "creationRecord": created or record, "mutationRecord": record}
        stored.setdefault("enabled", True)
        for condition in stored["conditions"]:
            condition["name"] = f"{name}/conditions/{unique()}"
        stored = proto3(stored)
        self.state["policies"][policy_id] = stored
        return stored

    @route("GET", r"^/v3/projects/([^/]+)/alertPolicies$")
    def list_policies(self, project, query, body):
        self.world.check_project(project)
        return {"alertPolicies": list(self.state["policies"].values())} if self.state["policies"] else {}

    @route("GET", r"^/v3/projects/([^/]+)/alertPolicies/([^/]+)$")
    def get_policy(self, project, policy_id, query, body):
        return self._policy(project, policy_id)

    @route("POST", r"^/v3/projects/([^/]+)/alertPolicies$", write=True)
    def create_policy(self, project, query, body):
        self.world.check_project(project)
        if body.get("name"):
            raise ApiError(400, "The name of a new alert policy is chosen by the server.")
        _check_policy(body, self.world.project_id)
        return self._stored(unique("1"), body)

    @route("PATCH", r"^/v3/projects/([^/]+)/alertPolicies/([^/]+)$", write=True)
    def update_policy(self, project, policy_id, query, body):
        found = self._policy(project, policy_id)
        mask = [field for field in query.get("updateMask", "").split(",") if field]
        updated = dict(found) if mask else dict(body)
        for field in mask:  # a field in the mask but not in the body is cleared
            updated.pop(field, None)
            if field in body:
                updated[field] = body[field]
        _check_policy(updated, self.world.project_id)
        return self._stored(policy_id, {k: v for k, v in updated.items() if k not in ("name", "mutationRecord")},
                            found["creationRecord"])

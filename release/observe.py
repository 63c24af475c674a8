"""`observe`: log-based metrics, the dashboard and the alert policies of release/monitoring/, made so.

Each is compared with what the project holds (by metric name, or by display name for the dashboard
and policies) and written only when missing or different, so a second run changes nothing.
Metrics and the dashboard go through gcloud; alert policies through the Monitoring REST API (v3),
since gcloud has them only in its alpha component.
"""

import json
import os
from pathlib import Path
from string import Template

from release import config, rest
from release.cloud import Cloud, together
from release.errors import ReleaseError, UsageError

DEFINITIONS = Path(__file__).resolve().parent / "monitoring"
SETTINGS = (("NOTIFICATION_CHANNELS", "", "comma-separated projects/PROJECT/notificationChannels/ID the alerts notify"),)
_DEFAULTS = ("", 0, False, "0s", None)


def definitions(service):
    """(log metrics, dashboard, alert policies) with ${SERVICE} and ${METRICS} filled in for `service`."""
    values = {"SERVICE": service, "METRICS": service.replace("-", "_")}  # PromQL names allow no '-'

    def load(name):
        return _fill(json.loads((DEFINITIONS / name).read_text()), values)

    return load("log_metrics.json"), load("dashboard.json"), load("alert_policies.json")["policies"]


def _fill(value, values):
    if isinstance(value, dict):
        return {_fill(k, values): _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return Template(value).substitute(values) if isinstance(value, str) else value


def matches(wanted, actual):
    """True when `actual` holds every field of `wanted`; a field the API leaves out must be a default
    (the JSON of Google APIs omits zeros, empty strings and empty lists)."""
    if isinstance(wanted, dict):
        actual = actual or {}
        return isinstance(actual, dict) and all(
            matches(v, actual[k]) if k in actual else _is_default(v) for k, v in wanted.items())
    if isinstance(wanted, list):
        actual = actual or []
        return isinstance(actual, list) and len(wanted) == len(actual) and all(map(matches, wanted, actual))
    if isinstance(wanted, (int, float)) and not isinstance(wanted, bool) and isinstance(actual, (int, float, str)):
        try:
            return float(actual) == float(wanted)  # int64 fields come back as strings
        except ValueError:
            return False
    return wanted == actual


def _is_default(value):
    if isinstance(value, dict):
        return all(map(_is_default, value.values()))
    if isinstance(value, list):
        return not value
    return value in _DEFAULTS


def _channels(environ):
    """NOTIFICATION_CHANNELS: comma-separated channel names (projects/P/notificationChannels/ID)."""
    names = [c.strip() for c in environ.get("NOTIFICATION_CHANNELS", "").split(",") if c.strip()]
    for name in names:
        if "/notificationChannels/" not in name:
            raise UsageError(f"NOTIFICATION_CHANNELS: {name!r} is not projects/PROJECT/notificationChannels/ID "
                             "(see gcloud beta monitoring channels list)")
    return names


def _one_by_display_name(items, wanted, kind):
    same = [item for item in items if item.get("displayName") == wanted]
    if len(same) > 1:
        raise ReleaseError(f"{len(same)} {kind}s are named {wanted!r}; delete all but one, then run observe again")
    return same[0] if same else None


def observe(dry_run=False, environ=os.environ):
    target = config.target(environ)
    metrics, dashboard, policies = definitions(target.service)
    channels = _channels(environ)
    if channels:
        policies = [{**policy, "notificationChannels": channels} for policy in policies]
    cloud = Cloud(target.project)
    alerts = rest.Api("monitoring", cloud.access_token(), environ)
    policies_path = f"v3/projects/{target.project}/alertPolicies"
    found = together({
        "metrics": lambda: cloud.read("logging", "metrics", "list"),
        "dashboards": lambda: cloud.read("monitoring", "dashboards", "list"),
        "policies": lambda: alerts.list(policies_path, "alertPolicies"),
    })
    failed = {key: value for key, value in found.items() if isinstance(value, ReleaseError)}
    if failed:
        raise ReleaseError("; ".join(f"cannot list {key}: {error}" for key, error in failed.items()) + "; nothing changed")

    writes = []  # (action, title, call)
    existing = {metric["name"]: metric for metric in found["metrics"] or []}
    for metric in metrics:
        have, name = existing.get(metric["name"]), metric["name"]
        verb = "create" if have is None else "update"
        if have is None or not matches(metric, have):
            writes.append((verb, f"log-based metric {name}", _metric_write(cloud, verb, metric)))
        else:
            writes.append(("ok", f"log-based metric {name}", None))

    have = _one_by_display_name(found["dashboards"] or [], dashboard["displayName"], "dashboard")
    title = f"dashboard {dashboard['displayName']!r}"
    if have is None or not matches(dashboard, have):
        writes.append(("create" if have is None else "update", title, _dashboard_write(cloud, dashboard, have)))
    else:
        writes.append(("ok", title, None))

    for policy in policies:
        have = _one_by_display_name(found["policies"], policy["displayName"], "alert policy")
        title = f"alert policy {policy['displayName']!r}"
        if have is None:
            writes.append(("create", title, _policy_call(alerts, "POST", policies_path, policy)))
        elif not matches(policy, have):
            # Only the fields defined here are replaced: a policy someone disabled stays disabled.
            writes.append(("update", title, _policy_call(alerts, "PATCH", f"v3/{have['name']}", policy,
                                                         {"updateMask": ",".join(sorted(policy))})))
        else:
            writes.append(("ok", title, None))
    return _apply(target, writes, dry_run)


def _metric_write(cloud, verb, metric):
    body = {k: v for k, v in metric.items() if k != "name"}
    return lambda: cloud.change_with_file(("logging", "metrics", verb, metric["name"]), "--config-from-file", body)


def _dashboard_write(cloud, dashboard, have):
    if have is None:
        return lambda: cloud.change_with_file(("monitoring", "dashboards", "create"), "--config-from-file", dashboard)
    # The etag makes the update fail, rather than overwrite, if someone changed the dashboard since it was read.
    args = ("monitoring", "dashboards", "update", have["name"].rsplit("/", 1)[-1])
    return lambda: cloud.change_with_file(args, "--config-from-file", {**dashboard, "etag": have.get("etag", "")})


def _policy_call(alerts, method, path, policy, query=None):
    return lambda: alerts.call(method, path, body=policy, query=query)


def _apply(target, writes, dry_run):
    print(f"Monitoring of {target.service} in {target.project}{' (dry run: nothing is changed)' if dry_run else ''}",
          flush=True)
    for action, title, _ in writes:
        print(f"  {action:<9} {title}", flush=True)
    todo = {title: call for _, title, call in writes if call}
    results = {} if dry_run else together(todo)
    failed = {title: error for title, error in results.items() if isinstance(error, ReleaseError)}
    print(f"{'would write' if dry_run else 'wrote'} {len(todo) - len(failed)} of {len(writes)}; "
          f"{len(writes) - len(todo)} were up to date", flush=True)
    if failed:
        raise ReleaseError("; ".join(f"{title}: {error}" for title, error in failed.items()))
    return 0

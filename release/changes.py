"""What a deploy changes against the revision serving now, said before anything changes.

A revision's settings are read back into the shape `config.revision()` gives (RUN_* names, the
probes, env vars), so the two compare name by name. `--set-env-vars` replaces every env var, so a
variable set on the serving revision (by an earlier release or by hand) that this release does not
set is dropped: that always gets a line saying so, and how to keep it.
"""

import re

from release import config

# Kubernetes quantities: Cloud Run may give back 1000m for a CPU of 1, or 1024Mi for 1Gi.
_QUANTITY = re.compile(r"^([0-9.]+)(m|k|K|M|G|T|Ki|Mi|Gi|Ti)?$")
_FACTORS = {None: 1, "m": 1e-3, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20,
            "Gi": 2**30, "Ti": 2**40}
_RUN_ORDER = ("RUN_CPU", "RUN_MEMORY", "RUN_CONCURRENCY", "RUN_MIN_INSTANCES", "RUN_MAX_INSTANCES",
              "RUN_TIMEOUT", "RUN_CPU_BOOST", "RUN_SERVICE_ACCOUNT", "startup probe", "liveness probe")
_DEFAULTS = {v.name: v.default for v in config.FUNCTION_SETTINGS}


def _text(value):
    return None if value is None else str(value)


def _probe(probe):
    """The config.revision() shape of a Knative probe; {'tcp': True} for a TCP one; None for none."""
    if not probe:
        return None
    shape = {key: probe.get(key) for key in ("periodSeconds", "timeoutSeconds", "failureThreshold")}
    if "httpGet" in probe:
        return {"path": probe["httpGet"].get("path", "/"), **shape}
    return {"tcp": True, **shape}


def of_revision(item):
    """The settings of a deployed revision (a Knative Revision object; {} for none)."""
    spec = item.get("spec", {})
    container = (spec.get("containers") or [{}])[0]
    annotations = item.get("metadata", {}).get("annotations", {})
    limits = container.get("resources", {}).get("limits", {})
    boost = annotations.get("run.googleapis.com/startup-cpu-boost")
    run = {
        "RUN_CPU": _text(limits.get("cpu")), "RUN_MEMORY": _text(limits.get("memory")),
        "RUN_CONCURRENCY": _text(spec.get("containerConcurrency")),
        # gcloud leaves the annotation out for --min-instances=0
        "RUN_MIN_INSTANCES": _text(annotations.get("autoscaling.knative.dev/minScale", "0" if item else None)),
        "RUN_MAX_INSTANCES": _text(annotations.get("autoscaling.knative.dev/maxScale")),
        "RUN_TIMEOUT": _text(spec.get("timeoutSeconds")),
        "RUN_CPU_BOOST": None if boost is None else str(boost).lower(),
        "RUN_SERVICE_ACCOUNT": spec.get("serviceAccountName") or None,
        "startup probe": _probe(container.get("startupProbe")),
        "liveness probe": _probe(container.get("livenessProbe")),
    }
    # Secrets (valueFrom) are not env vars a release sets, and --set-env-vars leaves them alone.
    env = {e["name"]: e.get("value", "") for e in container.get("env", []) if "valueFrom" not in e}
    return config.Revision(run, env), container.get("image")


def _show(name, value):
    if name.endswith("probe"):
        if value is None:
            return "Cloud Run's default (TCP: passes once the port opens)" if name == "startup probe" else "none"
        what = "TCP" if value.get("tcp") else f"GET {value['path']}"
        return (f"{what} every {value['periodSeconds']}s, timeout {value['timeoutSeconds']}s, "
                f"{value['failureThreshold']} failures")
    return "unset" if value is None else value


def _same(name, old, new):
    if name in ("RUN_CPU", "RUN_MEMORY") and old and new:
        a, b = _QUANTITY.match(old), _QUANTITY.match(new)
        if a and b:
            return float(a.group(1)) * _FACTORS[a.group(2)] == float(b.group(1)) * _FACTORS[b.group(2)]
    return _show(name, old) == _show(name, new)


def _unset(name):
    default = _DEFAULTS.get(name)
    return f"unset (default {default})" if default else "unset"


def changes(current, wanted, image_now=None, image=None):
    """One line per setting this release changes, drops or adds."""
    lines = []
    if image_now != image:
        lines.append(f"image: {image_now or 'none'} -> {image}")
    for name in _RUN_ORDER:
        old, new = current.run.get(name), wanted.run.get(name)
        if name == "RUN_SERVICE_ACCOUNT" and new is None:
            continue  # no flag: the service keeps the account it has
        if not _same(name, old, new):
            lines.append(f"{name}: {_show(name, old)} -> {_show(name, new)}")
    for name in sorted(set(current.env) | set(wanted.env)):
        old, new = current.env.get(name), wanted.env.get(name)
        if old == new:
            continue
        if new is not None:
            lines.append(f"{name}: {_unset(name) if old is None else old} -> {new}")
        elif name in _DEFAULTS:
            lines.append(f"{name}: {old} -> {_unset(name)}; dropped: set on the serving revision but not in "
                         f"this release (set {name}={old} when deploying to keep it)")
        else:
            lines.append(f"{name}: {old} -> unset; dropped: set on the serving revision, and not a setting "
                         "a release carries (see ./deploy.sh help)")
    return lines


def describe(version, serving, percent, lines):
    """The report printed on stderr before `deploy` changes anything."""
    where = f"against {serving}, which serves {percent}%" if serving else "on a new service"
    if not lines:
        return f"{version} {where}: no setting changes"
    return "\n".join([f"{version} {where}:"] + [f"  {line}" for line in lines])

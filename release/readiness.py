"""Why a deploy's revision never became ready, in one line, with the service's tags put back.

Every deploy sets an HTTP startup probe on the function's readiness route, so a revision whose model
cannot load fails that probe and never receives traffic; `gcloud run deploy` then fails with Cloud
Run's generic message. The cause is in the revision's logs: the function writes one
`model_load_failed` line naming it. Cloud Run leaves the version's tag on the failed revision in the
service's spec, which would keep the route from being ready, so the tag is taken back.
"""

import json

from release import traffic
from release.errors import ReleaseError


def _ready_condition(item):
    conditions = (item or {}).get("status", {}).get("conditions", []) or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


def _load_error(gcloud, service, revision):
    """The function's own `model load failed: ...` line for `revision`, or None if none is readable."""
    log_filter = (f'resource.type="cloud_run_revision" AND resource.labels.service_name="{service}" AND '
                  f'resource.labels.revision_name="{revision}" AND jsonPayload.event="model_load_failed"')
    try:
        entries = gcloud.log_entries(log_filter, limit=1)
    except ReleaseError:
        return None  # no logging.viewer role, say: the revision's own message still explains it
    payload = (entries[0].get("jsonPayload") or {}) if entries else {}
    message = payload.get("message")
    if not message:
        return None
    return f"{message} ({payload['reason']})" if payload.get("reason") else message


def _first_line(text):
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def _spec_tagged(service, tag, revision):
    return any(e.get("tag") == tag and e.get("revisionName") == revision
               for e in (service.get("spec", {}).get("traffic") or []))


def explain(gcloud, before, tag, version, error):
    """The ReleaseError to end a failed deploy with: one line naming the revision and the cause when
    the new revision failed to become ready; `error` unchanged when something else went wrong."""
    after = gcloud.service()
    if after is None:
        return error
    created = after.get("status", {}).get("latestCreatedRevisionName")
    if not created or created == (before or {}).get("status", {}).get("latestCreatedRevisionName"):
        return error
    ready = _ready_condition(gcloud.revision(created))
    if ready.get("status") != "False":
        return error
    cause = _load_error(gcloud, gcloud.target.service, created) or _first_line(ready.get("message")) \
        or "its startup probe failed"
    served = traffic.serving(after)
    note = ""
    if served and _spec_tagged(after, tag, created):
        try:
            gcloud.update_traffic(f"--remove-tags={tag}", settled=lambda now: not _spec_tagged(now, tag, created),
                                  say=False)  # gcloud repeats the failure this line already explains
        except ReleaseError as cleanup:
            note = f"; tag {tag} is still on it ({cleanup}), remove it with update-traffic --remove-tags={tag}"
    where = f"traffic unchanged: {json.dumps(served, sort_keys=True)}" if served else "nothing serves yet"
    return ReleaseError(f"{version} did not deploy: revision {created} never became ready: {cause}; {where}{note}")

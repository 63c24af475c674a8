"""doctor's checks beyond the set-up steps: images in the registry, the service and its revisions,
what the service runs as, and recent model_load_failed lines. Each reports OK or FAIL (with a fix)
to a report from what the reads found; none calls anything."""

import shlex

from release import plan, project, traffic, versions

FRESHNESS = "1d"  # how far back to look for model_load_failed lines
_REASON_FIX = {
    "MODEL_NOT_FOUND": "publish the model there (python -m model publish gs://BUCKET/PATH) or deploy with the "
                       "MODEL_URI that holds it",
    "MODEL_INTEGRITY": "re-publish the model: its bytes do not match its manifest",
    "MODEL_UNREADABLE": "re-publish the model: the file is not one this runtime can read",
    "MODEL_UNSAFE": "publish it in skops format; set MODEL_ALLOW_PICKLE or MODEL_TRUSTED_TYPES only for a model "
                    "you trust",
    "MODEL_VERSION_MISMATCH": "retrain with the scikit-learn of requirements.txt, or deploy with "
                              "MODEL_ALLOW_VERSION_MISMATCH=true",
}


def failures_filter(names):
    return (f'resource.type="cloud_run_revision" AND resource.labels.service_name="{names.service}" '
            'AND jsonPayload.event="model_load_failed"')


def serving_revisions(service, revisions):
    """(revision, image, model bucket) for each revision with traffic."""
    table = traffic.serving(service) if service else {}
    out = []
    for item in revisions:
        name = item["metadata"]["name"]
        if table.get(name):
            container = ((item.get("spec") or {}).get("containers") or [{}])[0]
            env = {e.get("name"): e.get("value", "") for e in container.get("env") or []}
            out.append((name, container.get("image"), project.bucket_of(env.get("MODEL_URI", ""))))
    return out


def in_artifact_registry(image):
    return image.split("/", 1)[0].endswith("-docker.pkg.dev")


def images(report, found, wanted, version):
    if not wanted:
        report.skip("images: no version given and no revision serves traffic")
    for image in wanted:
        key = f"image:{image}"
        if key not in found.results:
            report.skip(f"image {image}: not in Artifact Registry, not checked")
        elif found.error(key):
            report.fail(f"image {image} cannot be read: {found.error(key)}")
        elif found.get(key) is None:
            fix = (f"docker build -t {image} . && docker push {image} (or push the tag {version} to run the release "
                   "workflow)" if version else "./deploy.sh rollback vX.Y.Z to a version whose image exists, or "
                   "release a new version")
            report.fail(f"image {image} is not in the registry", fix)
        else:
            report.ok(f"image {image} is in the registry")


def _ready(resource):
    for condition in (resource.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status"), condition.get("message") or condition.get("reason") or ""
    return "Unknown", "no Ready condition yet"


def service(report, names, found, version):
    if found.error("service"):
        report.fail(f"service {names.service} cannot be read: {found.error('service')}")
        return
    described = found.get("service")
    if described is None:
        report.fail(f"service {names.service} does not exist in {names.project}/{names.region}",
                    "./deploy.sh deploy vX.Y.Z")
        return
    status, message = _ready(described)
    serving = traffic.serving(described)
    if status != "True":
        report.fail(f"service {names.service} is not ready: {message}",
                    "./deploy.sh rollback (to the revision that served before the last traffic move)")
    else:
        report.ok(f"service {names.service} is ready, serving {serving}")
    tagged = {revision: versions.version_for(tag) for tag, (revision, _) in traffic.tags(described).items()
              if versions.version_for(tag)}
    revisions = found.get("revisions") or []
    broken = [(item["metadata"]["name"], *_ready(item)) for item in revisions if _ready(item)[0] != "True"]
    for name, _, message in broken:
        logs = shlex.join(["gcloud", "logging", "read", f'resource.labels.revision_name="{name}"', "--limit=20",
                           f"--project={names.project}"])
        fix = ("./deploy.sh rollback, then read its logs: " if serving.get(name) else "read its logs: ") + logs
        report.fail(f"revision {name} ({tagged.get(name) or 'no version tag'}, {serving.get(name, 0)}% traffic) "
                    f"is not ready: {message}", fix)
    if not broken:
        report.ok(f"{len(revisions)} revision(s) ready")
    if version and version not in tagged.values():
        report.fail(f"{version} is not deployed to {names.service}", f"./deploy.sh deploy {version}")


def runs_as(report, names, described):
    if described is None:
        return
    spec = (described.get("spec") or {}).get("template", {}).get("spec", {})
    actual = spec.get("serviceAccountName") or "Cloud Run's default (PROJECT_NUMBER-compute@developer.gserviceaccount.com)"
    if actual != names.runtime:
        report.fail(f"service {names.service} runs as {actual}, not {names.runtime}",
                    f"RUN_SERVICE_ACCOUNT={names.runtime} ./deploy.sh deploy vX.Y.Z (in the workflow: the "
                    "repository variable RUNTIME_SERVICE_ACCOUNT)")
    else:
        report.ok(f"service {names.service} runs as {names.runtime}")


def failures(report, cloud, names, found):
    if found.error("failures"):
        report.fail(f"cannot read the logs: {found.error('failures')}")
        return
    entries = found.get("failures") or []
    if not entries:
        report.ok(f"no model_load_failed log lines in the last {FRESHNESS}")
        return
    details = []
    for entry in entries:
        payload = entry.get("jsonPayload") or {}
        revision = ((entry.get("resource") or {}).get("labels") or {}).get("revision_name", "?")
        details.append(f"{entry.get('timestamp', '?')} {revision} {payload.get('reason', '?')}: "
                       f"{payload.get('message', '')}")
    reason = (entries[0].get("jsonPayload") or {}).get("reason")
    fix = _REASON_FIX.get(reason)
    if reason == "MODEL_SOURCE_UNAVAILABLE":
        fix = ("grant the runtime account read access to the model's bucket: " + cloud.shown(
            "storage", "buckets", "add-iam-policy-binding", f"gs://{names.bucket or 'BUCKET'}",
            f"--role={plan.OBJECT_READER}", f"--member=serviceAccount:{names.runtime}"))
    if fix is None:
        fix = "read the revision's logs: " + shlex.join(["gcloud", "logging", "read", failures_filter(names),
                                                        f"--project={names.project}"])
    report.fail(f"{len(entries)} model_load_failed log line(s) in the last {FRESHNESS}, newest first", fix, details)

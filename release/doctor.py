"""`doctor`: read-only checks of everything a release needs, each printed as OK, or FAIL with what is
wrong and the command that fixes it; exit 1 when any check fails.

Every call only reads (describe, list, get-iam-policy, logging read), side by side. The set-up
checks are setup's own steps (release.plan), so doctor and setup agree on what a project needs.
"""

import os
import shlex
from dataclasses import replace

from release import inventory, plan, project, traffic, versions
from release.cloud import Cloud, together
from release.errors import ReleaseError

FRESHNESS = "1d"  # how far back to look for model_load_failed lines
_CHECKS = ("apis", "registry", "service", "runtime", "deployer", "identity", "logs")
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


class _Report:
    def __init__(self):
        self.failures = 0

    @staticmethod
    def ok(text):
        print(f"OK    {text}", flush=True)

    def fail(self, text, fix=None, details=()):
        self.failures += 1
        print(f"FAIL  {text}", flush=True)
        for line in details:
            print(f"        {line}", flush=True)
        if fix:
            print(f"      fix: {fix}", flush=True)

    @staticmethod
    def skip(text):
        print(f"SKIP  {text}", flush=True)

    def end(self):
        if self.failures:
            print(f"{self.failures} problem(s). `./deploy.sh setup` runs the set-up fixes above.", flush=True)
            return 1
        print("All checks passed.", flush=True)
        return 0


def doctor(version=None):
    if version is not None:
        versions.parse(version)
    names = project.names()
    cloud = Cloud(names.project)
    report = _Report()
    try:
        cloud.access_token()
    except ReleaseError as error:
        report.fail(f"gcloud is not logged in: {error}", "gcloud auth login (on a server: gcloud auth "
                    "activate-service-account, or Workload Identity Federation)")
        return report.end()
    report.ok("gcloud is logged in")
    region = f"--region={names.region}"
    found = inventory.read(cloud, names, {
        "service": lambda: cloud.find("run", "services", "describe", names.service, region),
        "revisions": lambda: cloud.read("run", "revisions", "list", f"--service={names.service}", region),
        "failures": lambda: cloud.read("logging", "read", _failures_filter(names), f"--freshness={FRESHNESS}",
                                       "--limit=5"),
    })
    if not _project(report, cloud, names, found):
        return report.end()
    names = names.with_github_repo_from((found.get("provider") or {}).get("attributeCondition"))
    service = found.get("service")
    serving = _serving_revisions(service, found.get("revisions") or [])
    if version:  # IMAGE_REPO, as deploy reads it, else where setup's repository keeps the service's images
        images = [f"{os.environ.get('IMAGE_REPO') or names.image_repo}:{version}"]
    else:
        images = sorted({image for _, image, _ in serving if image})
    later = {f"image:{image}": _image_read(cloud, image) for image in images if _in_artifact_registry(image)}
    if not names.bucket:  # the bucket of the model the service runs, when the env names none
        buckets = sorted({b for _, _, b in serving if b})
        if buckets:
            names = replace(names, bucket=buckets[0])
            later["policy:bucket"] = inventory.bucket_policy_read(cloud, names.bucket)
    found.results.update(together(later))
    steps = plan.steps(names, found)
    for check in _CHECKS:
        for step in (s for s in steps if s.check == check):
            if step.problem is None:
                report.ok(step.title)
            else:
                report.fail(f"{step.title}: {step.problem}", cloud.shown(*step.fix) if step.fix else None)
        if check == "registry":
            _images(report, found, images, version)
        elif check == "service":
            _service(report, names, found, version)
        elif check == "runtime":
            _runs_as(report, names, service)
            if not names.bucket:
                report.skip("model bucket: MODEL_URI is not gs:// here nor on the serving revisions")
        elif check == "logs":
            _failures(report, cloud, names, found)
    return report.end()


def _project(report, cloud, names, found):
    if found.error("project"):
        report.fail(f"project {names.project} cannot be read: {found.error('project')}",
                    "check PROJECT_ID against `gcloud projects list`, and that your account has access")
        return False
    state = found.get("project").get("lifecycleState", "ACTIVE")
    if state != "ACTIVE":
        report.fail(f"project {names.project} is {state}", cloud.shown("projects", "undelete", names.project))
        return False
    report.ok(f"project {names.project} exists (number {found.project_number})")
    return True


def _serving_revisions(service, revisions):
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


def _in_artifact_registry(image):
    return image.split("/", 1)[0].endswith("-docker.pkg.dev")


def _image_read(cloud, image):
    return lambda: cloud.find("artifacts", "docker", "images", "describe", image)


def _images(report, found, images, version):
    if not images:
        report.skip("images: no version given and no revision serves traffic")
    for image in images:
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


def _condition(resource, kind="Ready"):
    for condition in (resource.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition.get("status"), condition.get("message") or condition.get("reason") or ""
    return "Unknown", "no Ready condition yet"


def _service(report, names, found, version):
    where = f"{names.project}/{names.region}"
    if found.error("service"):
        report.fail(f"service {names.service} cannot be read: {found.error('service')}")
        return
    service = found.get("service")
    if service is None:
        report.fail(f"service {names.service} does not exist in {where}", "./deploy.sh deploy vX.Y.Z")
        return
    status, message = _condition(service)
    if status != "True":
        report.fail(f"service {names.service} is not ready: {message}", "./deploy.sh rollback (to the revision "
                    "that served before the last traffic move)")
    else:
        report.ok(f"service {names.service} is ready, serving {traffic.serving(service)}")
    tagged = {revision: versions.version_for(tag) for tag, (revision, _) in traffic.tags(service).items()
              if versions.version_for(tag)}
    serving = traffic.serving(service)
    revisions = found.get("revisions") or []
    broken = 0
    for item in revisions:
        name = item["metadata"]["name"]
        status, message = _condition(item)
        if status == "True":
            continue
        broken += 1
        logs = shlex.join(["gcloud", "logging", "read", f'resource.labels.revision_name="{name}"', "--limit=20",
                           f"--project={names.project}"])
        fix = "./deploy.sh rollback, then read its logs: " + logs if serving.get(name) else "read its logs: " + logs
        report.fail(f"revision {name} ({tagged.get(name) or 'no version tag'}, {serving.get(name, 0)}% traffic) "
                    f"is not ready: {message}", fix)
    if not broken:
        report.ok(f"{len(revisions)} revision(s) ready")
    if version and version not in tagged.values():
        report.fail(f"{version} is not deployed to {names.service}", f"./deploy.sh deploy {version}")


def _runs_as(report, names, service):
    if service is None:
        return
    spec = (service.get("spec") or {}).get("template", {}).get("spec", {})
    actual = spec.get("serviceAccountName") or "Cloud Run's default (PROJECT_NUMBER-compute@developer.gserviceaccount.com)"
    if actual != names.runtime:
        report.fail(f"service {names.service} runs as {actual}, not {names.runtime}",
                    f"RUN_SERVICE_ACCOUNT={names.runtime} ./deploy.sh deploy vX.Y.Z (in the workflow: the "
                    "repository variable RUNTIME_SERVICE_ACCOUNT)")
    else:
        report.ok(f"service {names.service} runs as {names.runtime}")


def _failures_filter(names):
    return (f'resource.type="cloud_run_revision" AND resource.labels.service_name="{names.service}" '
            'AND jsonPayload.event="model_load_failed"')


def _failures(report, cloud, names, found):
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
    report.fail(f"{len(entries)} model_load_failed log line(s) in the last {FRESHNESS}, newest first", fix or
                "read the revision's logs: " + shlex.join(["gcloud", "logging", "read", _failures_filter(names),
                                                           f"--project={names.project}"]), details)

"""`doctor`: read-only checks of everything a release needs, each printed as OK, or FAIL with what is
wrong and the command that fixes it; exit 1 when any check fails.

Every call only reads (describe, list, get-iam-policy, logging read), side by side. The set-up
checks are setup's own steps (release.plan), so doctor and setup agree on what a project needs;
the rest are in release.checks.
"""

from dataclasses import replace

from release import checks, inventory, plan, project, versions
from release.cloud import Cloud, together
from release.errors import ReleaseError

# The order checks print in; each takes its set-up steps (release.plan) and the checks of its own.
_ORDER = ("apis", "registry", "service", "runtime", "deployer", "identity", "logs")


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
        "failures": lambda: cloud.read("logging", "read", checks.failures_filter(names),
                                       f"--freshness={checks.FRESHNESS}", "--limit=5"),
    })
    problem = inventory.project_problem(cloud, names, found)
    if problem:
        report.fail(*problem)
        return report.end()
    report.ok(f"project {names.project} exists (number {found.project_number})")

    names = names.with_github_repo_from((found.get("provider") or {}).get("attributeCondition"))
    service = found.get("service")
    serving = checks.serving_revisions(service, found.get("revisions") or [])
    images = [f"{names.image_repo}:{version}"] if version else sorted({i for _, i, _ in serving if i})
    later = {f"image:{image}": _image_read(cloud, image) for image in images if checks.in_artifact_registry(image)}
    if not names.bucket:  # the bucket of the model the service runs, when the env names none
        buckets = sorted({bucket for _, _, bucket in serving if bucket})
        if buckets:
            names = replace(names, bucket=buckets[0])
            later["policy:bucket"] = inventory.bucket_policy_read(cloud, names.bucket)
    found.results.update(together(later))

    steps = plan.steps(names, found)
    for check in _ORDER:
        for step in (s for s in steps if s.check == check):
            if step.problem is None:
                report.ok(step.title)
            else:
                report.fail(f"{step.title}: {step.problem}", cloud.shown(*step.fix) if step.fix else None)
        if check == "registry":
            checks.images(report, found, images, version)
        elif check == "service":
            checks.service(report, names, found, version)
        elif check == "runtime":
            checks.runs_as(report, names, service)
            if not names.bucket:
                report.skip("model bucket: MODEL_URI is not gs:// here nor on the serving revisions")
        elif check == "logs":
            checks.failures(report, cloud, names, found)
    return report.end()


def _image_read(cloud, image):
    return lambda: cloud.find("artifacts", "docker", "images", "describe", image)

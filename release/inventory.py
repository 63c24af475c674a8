"""What the project holds now, read by read-only gcloud calls run side by side.

A resource that does not exist reads as None; a read that fails otherwise (no permission, an API
that is off) keeps its error, so doctor can name it and setup can stop before changing anything.
"""

from release import project
from release.cloud import together
from release.errors import ReleaseError


def reads(cloud, names):
    """{key: call} for everything the set-up plan is compared against, once the project is known."""
    location = f"--location={names.region}"
    calls = {
        "apis": lambda: cloud.read("services", "list", "--enabled"),
        "repo": lambda: cloud.find("artifacts", "repositories", "describe", names.repo, location),
        "pool": lambda: cloud.find("iam", "workload-identity-pools", "describe", project.POOL, "--location=global"),
        "provider": lambda: cloud.find("iam", "workload-identity-pools", "providers", "describe", project.PROVIDER,
                                       f"--workload-identity-pool={project.POOL}", "--location=global"),
        "accounts": lambda: cloud.read("iam", "service-accounts", "list"),
        # A policy of a resource that does not exist yet reads as None, so these need not wait for it.
        "policy:project": lambda: cloud.read("projects", "get-iam-policy", names.project),
        "policy:deployer": lambda: cloud.find("iam", "service-accounts", "get-iam-policy", names.deployer),
        "policy:runtime": lambda: cloud.find("iam", "service-accounts", "get-iam-policy", names.runtime),
        "policy:repo": lambda: cloud.find("artifacts", "repositories", "get-iam-policy", names.repo, location),
    }
    if names.bucket:
        calls["policy:bucket"] = bucket_policy_read(cloud, names.bucket)
    return calls


def bucket_policy_read(cloud, bucket):
    return lambda: cloud.find("storage", "buckets", "get-iam-policy", f"gs://{bucket}")


def project_problem(cloud, names, found):
    """(what is wrong, the fix) when the project cannot be used, else None."""
    if found.error("project"):
        return (f"project {names.project} cannot be read: {found.error('project')}",
                "check PROJECT_ID against `gcloud projects list`, and that your account has access to it")
    state = found.get("project").get("lifecycleState", "ACTIVE")
    if state != "ACTIVE":
        return f"project {names.project} is {state}", cloud.shown("projects", "undelete", names.project)
    return None


class Inventory:
    """The results of `reads`, by key: a value (None: not there) or the read's error."""

    def __init__(self, results):
        self.results = dict(results)

    def get(self, key):
        value = self.results.get(key)
        return None if isinstance(value, ReleaseError) else value

    def error(self, key):
        value = self.results.get(key)
        return str(value) if isinstance(value, ReleaseError) else None

    def errors(self):
        return {key: str(value) for key, value in self.results.items() if isinstance(value, ReleaseError)}

    @property
    def project_number(self):
        return (self.get("project") or {}).get("projectNumber")

    @property
    def enabled_apis(self):
        return {(item.get("config") or {}).get("name") or item.get("name", "").rsplit("/", 1)[-1]
                for item in self.get("apis") or []}

    @property
    def accounts(self):
        return {account["email"]: account for account in self.get("accounts") or []}


def read(cloud, names, extra=None):
    """The project, then (when it could be read) `reads` and any `extra` {key: call} side by side."""
    found = Inventory(together({"project": lambda: cloud.read("projects", "describe", names.project)}))
    if not found.error("project"):
        found.results.update(together({**reads(cloud, names), **(extra or {})}))
    return found

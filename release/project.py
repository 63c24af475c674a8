"""The names a release project uses beyond the service itself, from env vars with documented defaults.

`setup` creates what these name, `doctor` checks them, and the workflow's repository variables
point at them, so each default is written here once.
"""

import os
import re
from dataclasses import dataclass, replace

from release import config
from release.errors import UsageError

# (env var, default, meaning) for `./deploy.sh help`.
SETTINGS = (
    ("REPO", "releases", "Artifact Registry repository (docker format) holding the images"),
    ("GITHUB_REPO", "", "owner/name of the only GitHub repository allowed to deploy (setup needs it)"),
    ("DEPLOY_SERVICE_ACCOUNT", "deployer@PROJECT_ID.iam.gserviceaccount.com", "what GitHub Actions deploys as"),
    ("RUN_SERVICE_ACCOUNT", "SERVICE-runtime@PROJECT_ID.iam.gserviceaccount.com",
     "what the service runs as, for setup and doctor (deploy: Cloud Run's default when unset)"),
    ("MODEL_BUCKET", "bucket of MODEL_URI if gs://", "bucket the runtime account may read"),
)
POOL = PROVIDER = "github"
ISSUER = "https://token.actions.githubusercontent.com"
MAPPING = {"google.subject": "assertion.sub", "attribute.repository": "assertion.repository"}
CONDITION_HINT = "assertion.repository == 'OWNER/NAME'"
_GITHUB_REPO = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
_REPO = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_ACCOUNT_ID = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
_PINNED = re.compile(r"^\(?\s*assertion\.repository\s*==\s*'([^']+)'\s*\)?$")


@dataclass(frozen=True)
class Names:
    project: str
    region: str
    service: str
    repo: str
    github_repo: str | None
    deployer: str
    runtime: str
    bucket: str | None
    image_repo: str  # IMAGE_REPO, as deploy reads it, else where REPO keeps the service's images

    @property
    def condition(self):
        """The provider's attribute condition: tokens from other repositories are refused."""
        return f"assertion.repository == '{self.github_repo}'"

    def principal(self, project_number):
        """Every workflow run of GITHUB_REPO, as an IAM member."""
        return (f"principalSet://iam.googleapis.com/projects/{project_number}/locations/global/"
                f"workloadIdentityPools/{POOL}/attribute.repository/{self.github_repo}")

    def provider_name(self, project_number):
        return f"projects/{project_number}/locations/global/workloadIdentityPools/{POOL}/providers/{PROVIDER}"

    def with_github_repo_from(self, condition):
        """Names whose GITHUB_REPO is the one a provider's condition allows, when GITHUB_REPO is unset."""
        pinned = pinned_repository(condition)
        return replace(self, github_repo=pinned) if pinned and not self.github_repo else self


def pinned_repository(condition):
    """The one repository a provider's condition requires (other clauses joined by && may narrow it
    further, to a branch say), or None when it does not require one."""
    if not condition or "||" in condition:
        return None
    pinned = {m.group(1) for part in condition.split("&&") if (m := _PINNED.match(part.strip()))}
    return pinned.pop() if len(pinned) == 1 else None


def names(environ=os.environ, need_github_repo=False):
    """Reads and checks the names; raises UsageError naming the first bad one."""
    target = config.target(environ)
    project = target.project
    repo = environ.get("REPO") or "releases"
    if not _REPO.match(repo):
        raise UsageError(f"REPO={repo!r} is not a valid repository id (lowercase letters, digits, '-')")
    github_repo = environ.get("GITHUB_REPO") or None
    if need_github_repo and not github_repo:
        raise UsageError("missing env var GITHUB_REPO (owner/name of the repository whose workflows deploy)")
    if github_repo and not _GITHUB_REPO.match(github_repo):
        raise UsageError(f"GITHUB_REPO={github_repo!r} must be owner/name")
    deployer = _account(environ, "DEPLOY_SERVICE_ACCOUNT", "deployer", project)
    runtime = _account(environ, "RUN_SERVICE_ACCOUNT", f"{target.service}-runtime", project)
    image_repo = environ.get("IMAGE_REPO") or f"{target.region}-docker.pkg.dev/{project}/{repo}/{target.service}"
    return Names(project, target.region, target.service, repo, github_repo, deployer, runtime, model_bucket(environ),
                 image_repo)


def model_bucket(environ):
    """MODEL_BUCKET, else the bucket of a gs:// MODEL_URI, else None (a model baked into the image)."""
    if environ.get("MODEL_BUCKET"):
        return environ["MODEL_BUCKET"].removeprefix("gs://").rstrip("/")
    return bucket_of(environ.get("MODEL_URI", ""))


def bucket_of(uri):
    if not uri.startswith("gs://"):
        return None
    return uri.removeprefix("gs://").split("/", 1)[0] or None


def _account(environ, variable, default_id, project):
    email = environ.get(variable) or f"{default_id}@{project}.iam.gserviceaccount.com"
    account_id, _, domain = email.partition("@")
    if domain != f"{project}.iam.gserviceaccount.com":
        raise UsageError(f"{variable}={email!r} must be an account of {project} "
                         f"(NAME@{project}.iam.gserviceaccount.com)")
    if not _ACCOUNT_ID.match(account_id):
        raise UsageError(f"{variable}: {account_id!r} is not a valid account id (6-30 lowercase letters, digits, "
                         f"'-'); set {variable} to a shorter NAME@{project}.iam.gserviceaccount.com")
    return email

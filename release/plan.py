"""The one-time set-up as a list of steps, each compared with what the project holds now.

A step names what should be there, what is wrong with it (None when it is in place) and the gcloud
command that puts it right. `setup` runs those commands in order; `doctor` prints them as fixes.
"""

from dataclasses import dataclass

from release import project
from release.project import ISSUER, MAPPING, POOL, PROVIDER

APIS = ("run.googleapis.com", "artifactregistry.googleapis.com", "iam.googleapis.com", "iamcredentials.googleapis.com",
        "sts.googleapis.com", "logging.googleapis.com", "monitoring.googleapis.com")
OBJECT_READER = "roles/storage.objectViewer"
# Roles that also grant what a step asks for, so a broader grant is not reported as missing.
_BROADER = {
    "roles/run.developer": {"roles/run.admin", "roles/editor", "roles/owner"},
    "roles/run.invoker": {"roles/run.admin", "roles/run.developer", "roles/editor", "roles/owner"},
    "roles/artifactregistry.writer": {"roles/artifactregistry.repoAdmin", "roles/artifactregistry.admin",
                                      "roles/editor", "roles/owner"},
    "roles/iam.serviceAccountUser": {"roles/editor", "roles/owner"},
    "roles/logging.viewer": {"roles/logging.privateLogViewer", "roles/logging.admin", "roles/viewer", "roles/editor",
                             "roles/owner"},
    "roles/monitoring.viewer": {"roles/monitoring.editor", "roles/monitoring.admin", "roles/viewer", "roles/editor",
                                "roles/owner"},
    OBJECT_READER: {"roles/storage.objectUser", "roles/storage.objectAdmin", "roles/storage.admin",
                    "roles/storage.legacyObjectReader", "roles/storage.legacyObjectOwner", "roles/editor",
                    "roles/owner", "roles/viewer"},
}
_PUBLIC = ("allUsers", "allAuthenticatedUsers")


@dataclass(frozen=True)
class Step:
    check: str  # which doctor check it belongs to: apis, registry, runtime, deployer, identity
    action: str  # what setup does when it is not in place: create, enable, grant, update, undelete
    title: str
    problem: str | None = None
    fix: tuple | None = None  # gcloud arguments (without --project); None: setup cannot fix it


def grants(policy, role, member):
    """True when an unconditional binding of `role` (or a broader role) holds `member` (or everyone)."""
    roles = {role} | _BROADER.get(role, set())
    return any(binding.get("role") in roles and not binding.get("condition")
               and (member in binding.get("members", []) or set(_PUBLIC) & set(binding.get("members", [])))
               for binding in (policy or {}).get("bindings", []))


def steps(names, inventory):
    """Every step in the order setup runs them (what a later step uses is created by an earlier one)."""
    number = inventory.project_number
    deployer = f"serviceAccount:{names.deployer}"
    runtime = f"serviceAccount:{names.runtime}"
    repo = ("artifacts", "repositories", "add-iam-policy-binding", names.repo, f"--location={names.region}")
    on_project = ("projects", "add-iam-policy-binding", names.project)
    result = [_apis(inventory), _repository(names, inventory), _pool(inventory), _provider(names, inventory),
              _account(inventory, names.deployer, "deployer", "Releases from GitHub Actions"),
              _account(inventory, names.runtime, "runtime", f"{names.service} on Cloud Run"),
              _binding(inventory, "identity", "policy:deployer",
                       ("iam", "service-accounts", "add-iam-policy-binding", names.deployer),
                       "roles/iam.workloadIdentityUser", names.principal(number) if names.github_repo else None,
                       f"workflows of {names.github_repo or 'GITHUB_REPO'} may act as {names.deployer}"),
              _binding(inventory, "deployer", "policy:project", on_project, "roles/run.developer", deployer,
                       f"{names.deployer} may deploy to Cloud Run"),
              _binding(inventory, "deployer", "policy:project", on_project, "roles/run.invoker", deployer,
                       f"{names.deployer} may call the service (smoke tests, compare)"),
              _binding(inventory, "deployer", "policy:project", on_project, "roles/logging.viewer", deployer,
                       f"{names.deployer} may read why a revision failed to start"),
              _binding(inventory, "deployer", "policy:project", on_project, "roles/monitoring.viewer", deployer,
                       f"{names.deployer} may read a canary's metrics"),
              _binding(inventory, "deployer", "policy:repo", repo, "roles/artifactregistry.writer", deployer,
                       f"{names.deployer} may push to {names.repo}"),
              _binding(inventory, "deployer", "policy:runtime",
                       ("iam", "service-accounts", "add-iam-policy-binding", names.runtime),
                       "roles/iam.serviceAccountUser", deployer, f"{names.deployer} may deploy as {names.runtime}")]
    if names.bucket:
        result.append(_bucket(names, inventory, runtime))
    return result


def _apis(inventory):
    title = "APIs enabled: " + ", ".join(api.removesuffix(".googleapis.com") for api in APIS)
    if inventory.error("apis"):
        return Step("apis", "enable", title, f"cannot list enabled APIs: {inventory.error('apis')}")
    missing = [api for api in APIS if api not in inventory.enabled_apis]
    if not missing:
        return Step("apis", "enable", title)
    return Step("apis", "enable", title, f"not enabled: {', '.join(missing)}", ("services", "enable", *missing))


def _repository(names, inventory):
    title = f"Artifact Registry repository {names.repo} ({names.region}, docker)"
    found = inventory.get("repo")
    if inventory.error("repo"):
        return Step("registry", "create", title, f"cannot read it: {inventory.error('repo')}")
    if found is None:
        return Step("registry", "create", title, "missing", ("artifacts", "repositories", "create", names.repo,
                                                            "--repository-format=docker", f"--location={names.region}"))
    if found.get("format") != "DOCKER":
        return Step("registry", "create", title, f"it holds {found.get('format')} packages, not docker images; "
                    "set REPO to another name")
    return Step("registry", "create", title)


def _pool(inventory):
    title = f"workload identity pool {POOL}"
    found = inventory.get("pool")
    if inventory.error("pool"):
        return Step("identity", "create", title, f"cannot read it: {inventory.error('pool')}")
    if found is None:
        return Step("identity", "create", title, "missing", ("iam", "workload-identity-pools", "create", POOL,
                                                            "--location=global", "--display-name=GitHub Actions"))
    if found.get("state") == "DELETED":
        return Step("identity", "undelete", title, "deleted (it blocks a new pool of that name for 30 days)",
                    ("iam", "workload-identity-pools", "undelete", POOL, "--location=global"))
    return Step("identity", "create", title)


def _provider(names, inventory):
    title = f"OIDC provider {PROVIDER} for GitHub Actions, only for {names.github_repo or 'GITHUB_REPO'}"
    where = (f"--workload-identity-pool={POOL}", "--location=global")
    found = inventory.get("provider")
    wanted = (f"--issuer-uri={ISSUER}", "--attribute-mapping=" + ",".join(f"{k}={v}" for k, v in MAPPING.items()),
              f"--attribute-condition={names.condition if names.github_repo else project.CONDITION_HINT}")
    if inventory.error("provider"):
        return Step("identity", "create", title, f"cannot read it: {inventory.error('provider')}")
    if found is None:
        return Step("identity", "create", title, "missing",
                    ("iam", "workload-identity-pools", "providers", "create-oidc", PROVIDER, *where, *wanted))
    if found.get("state") == "DELETED":
        return Step("identity", "undelete", title, "deleted",
                    ("iam", "workload-identity-pools", "providers", "undelete", PROVIDER, *where))
    problems = []
    condition = found.get("attributeCondition") or ""
    if not names.github_repo:
        problems.append(f"its condition {condition!r} does not allow exactly one repository")
    elif project.pinned_repository(condition) != names.github_repo:
        problems.append(f"its condition is {condition!r}, not {names.condition!r}")
    mapping = found.get("attributeMapping") or {}
    if any(mapping.get(key) != value for key, value in MAPPING.items()):
        problems.append(f"its attribute mapping {mapping} lacks {MAPPING}")
    if (found.get("oidc") or {}).get("issuerUri") != ISSUER:
        problems.append(f"its issuer is not {ISSUER}")
    if found.get("disabled"):
        problems.append("it is disabled")
        wanted += ("--no-disabled",)
    if problems:
        return Step("identity", "update", title, "; ".join(problems),
                    ("iam", "workload-identity-pools", "providers", "update-oidc", PROVIDER, *where, *wanted))
    return Step("identity", "create", title)


def _account(inventory, email, role, display_name):
    check = "runtime" if role == "runtime" else "deployer"
    title = f"{role} service account {email}"
    if inventory.error("accounts"):
        return Step(check, "create", title, f"cannot list service accounts: {inventory.error('accounts')}")
    found = inventory.accounts.get(email)
    if found is None:
        return Step(check, "create", title, "missing", ("iam", "service-accounts", "create", email.split("@")[0],
                                                       f"--display-name={display_name}"))
    if found.get("disabled"):
        return Step(check, "enable", title, "disabled", ("iam", "service-accounts", "enable", email))
    return Step(check, "create", title)


def _binding(inventory, check, key, add_command, role, member, title):
    title = f"{title} ({role})"
    if member is None:  # the member depends on GITHUB_REPO, which neither the env nor the provider names
        return Step(check, "grant", title, "unknown: set GITHUB_REPO to check it")
    if inventory.error(key):
        return Step(check, "grant", title, f"cannot read the IAM policy: {inventory.error(key)}")
    if grants(inventory.get(key), role, member) or grants(inventory.get("policy:project"), role, member):
        return Step(check, "grant", title)
    return Step(check, "grant", title, f"{member} lacks {role}", (*add_command, f"--role={role}", f"--member={member}"))


def _bucket(names, inventory, member):
    what = f"{names.runtime} may read the model in gs://{names.bucket}"
    if inventory.error("policy:bucket") is None and inventory.get("policy:bucket") is None:
        return Step("runtime", "grant", f"{what} ({OBJECT_READER})",
                    f"bucket gs://{names.bucket} does not exist (see MODEL_URI, MODEL_BUCKET)")
    return _binding(inventory, "runtime", "policy:bucket",
                    ("storage", "buckets", "add-iam-policy-binding", f"gs://{names.bucket}"), OBJECT_READER, member, what)

"""IAM v1 stand-in: service accounts with their IAM policies, and workload identity pools with
their OIDC providers (soft-deleted ones included, which block a new one of the same name)."""

import re

from tests.fakes.google_api import ApiError, Policy, StandIn, done_operation, route, unique

_ACCOUNT_ID = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
_POOL_ID = re.compile(r"^(?!gcp-)[a-z0-9-]{4,32}$")
_POOLS = r"^/v1/projects/([^/]+)/locations/global/workloadIdentityPools"
_ACCOUNTS = r"^/v1/projects/([^/]+)/serviceAccounts"


class Iam(StandIn):
    host = "iam-fake"

    def __init__(self, world):
        super().__init__(world)
        self.state.update(accounts={}, pools={}, operations={})

    # -- service accounts ---------------------------------------------------------------------
    def _account(self, project, email):
        if project != "-":
            self.world.check_project(project)
        if email not in self.state["accounts"]:
            raise ApiError(404, f"Service account projects/{project}/serviceAccounts/{email} does not exist.")
        return self.state["accounts"][email]

    def exists(self, email):
        return email in self.state["accounts"]

    @route("GET", _ACCOUNTS + r"$")
    def list_accounts(self, project, query, body):
        self.world.check_project(project)
        accounts = [entry["account"] for _, entry in sorted(self.state["accounts"].items())]
        return {"accounts": accounts} if accounts else {}

    @route("POST", _ACCOUNTS + r"$", write=True)
    def create_account(self, project, query, body):
        self.world.check_project(project)
        account_id = body.get("accountId", "")
        if not _ACCOUNT_ID.match(account_id):
            raise ApiError(400, f"Invalid account id {account_id!r}: 6-30 characters, lowercase letters, digits "
                                   "and hyphens, starting with a letter.")
        email = f"{account_id}@{self.world.project_id}.iam.gserviceaccount.com"
        if email in self.state["accounts"]:
            raise ApiError(409, f"Service account {account_id} already exists within project "
                                   f"projects/{self.world.project_id}.")
        account = {"name": f"projects/{self.world.project_id}/serviceAccounts/{email}",
                   "projectId": self.world.project_id, "uniqueId": unique("1"), "email": email,
                   "displayName": (body.get("serviceAccount") or {}).get("displayName", ""), "etag": "MDEwMjE5MjA=",
                   "oauth2ClientId": unique("2")}
        self.state["accounts"][email] = {"account": account, "policy": Policy()}
        return account

    @route("GET", _ACCOUNTS + r"/([^/:]+)$")
    def get_account(self, project, email, query, body):
        return self._account(project, email)["account"]

    @route("POST", _ACCOUNTS + r"/([^/:]+):enable$", write=True)
    def enable_account(self, project, email, query, body):
        self._account(project, email)["account"].pop("disabled", None)
        return {}

    @route("POST", _ACCOUNTS + r"/([^/:]+):getIamPolicy$")
    def get_account_policy(self, project, email, query, body):
        return self._account(project, email)["policy"].get()

    @route("POST", _ACCOUNTS + r"/([^/:]+):setIamPolicy$", write=True)
    def set_account_policy(self, project, email, query, body):
        return self._account(project, email)["policy"].set(body.get("policy", {}), self.exists)

    # -- workload identity pools and providers -----------------------------------------------
    def _pool(self, project, pool):
        self.world.check_project(project)
        if pool not in self.state["pools"]:
            raise ApiError(404, "Requested entity was not found.")
        return self.state["pools"][pool]

    def _operation(self, resource_name, response):
        return done_operation(f"{resource_name}/operations/{unique()}", response, self.state["operations"])

    @route("GET", _POOLS + r"/([^/:]+)$")
    def get_pool(self, project, pool, query, body):
        return self._pool(project, pool)["pool"]

    @route("POST", _POOLS + r"$", write=True)
    def create_pool(self, project, query, body):
        self.world.check_project(project)
        pool_id = query.get("workloadIdentityPoolId", "")
        if not _POOL_ID.match(pool_id):
            raise ApiError(400, f"Invalid workload identity pool id {pool_id!r}.")
        if pool_id in self.state["pools"]:  # a deleted pool keeps its name for 30 days
            raise ApiError(409, "Requested entity already exists")
        pool = {"name": f"projects/{self.world.number}/locations/global/workloadIdentityPools/{pool_id}",
                "displayName": body.get("displayName", ""), "state": "ACTIVE"}
        self.state["pools"][pool_id] = {"pool": pool, "providers": {}}
        return self._operation(pool["name"], pool)

    @route("POST", _POOLS + r"/([^/:]+):undelete$", write=True)
    def undelete_pool(self, project, pool, query, body):
        found = self._pool(project, pool)["pool"]
        if found["state"] != "DELETED":
            raise ApiError(400, "The workload identity pool is not deleted.", "FAILED_PRECONDITION")
        found["state"] = "ACTIVE"
        return self._operation(found["name"], found)

    def _provider(self, project, pool, provider):
        providers = self._pool(project, pool)["providers"]
        if provider not in providers:
            raise ApiError(404, "Requested entity was not found.")
        return providers[provider]

    @route("GET", _POOLS + r"/([^/:]+)/providers/([^/:]+)$")
    def get_provider(self, project, pool, provider, query, body):
        return self._provider(project, pool, provider)

    @route("POST", _POOLS + r"/([^/:]+)/providers$", write=True)
    def create_provider(self, project, pool, query, body):
        found = self._pool(project, pool)
        if found["pool"]["state"] != "ACTIVE":
            raise ApiError(400, "The workload identity pool is deleted.", "FAILED_PRECONDITION")
        provider_id = query.get("workloadIdentityPoolProviderId", "")
        if not _POOL_ID.match(provider_id):
            raise ApiError(400, f"Invalid provider id {provider_id!r}.")
        if provider_id in found["providers"]:
            raise ApiError(409, "Requested entity already exists")
        provider = {"name": f"{found['pool']['name']}/providers/{provider_id}", "state": "ACTIVE"}
        provider.update(_checked_provider(body))
        found["providers"][provider_id] = provider
        return self._operation(provider["name"], provider)

    @route("PATCH", _POOLS + r"/([^/:]+)/providers/([^/:]+)$", write=True)
    def update_provider(self, project, pool, provider, query, body):
        found = self._provider(project, pool, provider)
        fields = {field.split(".")[0] for field in query.get("updateMask", "").split(",") if field}
        if not fields:
            raise ApiError(400, "updateMask is required.")
        merged = {**found, **{field: body[field] for field in fields if field in body}}
        checked = _checked_provider(merged)
        name, state = found["name"], found["state"]
        found.clear()
        found.update(name=name, state=state, **checked)
        return self._operation(found["name"], found)

    @route("POST", _POOLS + r"/([^/:]+)/providers/([^/:]+):undelete$", write=True)
    def undelete_provider(self, project, pool, provider, query, body):
        found = self._provider(project, pool, provider)
        if found["state"] != "DELETED":
            raise ApiError(400, "The provider is not deleted.", "FAILED_PRECONDITION")
        found["state"] = "ACTIVE"
        return self._operation(found["name"], found)

    @route("GET", r"^/v1/(projects/[^/]+/locations/global/workloadIdentityPools/.+/operations/[^/]+)$")
    def operation(self, name, query, body):
        if name not in self.state["operations"]:
            raise ApiError(404, "Requested entity was not found.")
        return self.state["operations"][name]


def _checked_provider(body):
    """The provider fields IAM keeps, refused as IAM refuses them."""
    issuer = (body.get("oidc") or {}).get("issuerUri", "")
    mapping = body.get("attributeMapping") or {}
    condition = body.get("attributeCondition", "")
    if not issuer.startswith("https://"):
        raise ApiError(400, "oidc.issuerUri must be an https URL.")
    if "google.subject" not in mapping:
        raise ApiError(400, "attributeMapping must map google.subject.")
    if issuer == "https://token.actions.githubusercontent.com" and not condition:
        raise ApiError(400, "An attribute condition is required for this issuer: it must restrict which "
                               "repositories' tokens are accepted.")
    if condition and "assertion." not in condition and "attribute." not in condition:
        raise ApiError(400, f"The attribute condition {condition!r} must reference the assertion's claims.")
    kept = {"oidc": {"issuerUri": issuer}, "attributeMapping": dict(mapping), "attributeCondition": condition,
            "disabled": bool(body.get("disabled"))}
    return {key: value for key, value in kept.items() if value}

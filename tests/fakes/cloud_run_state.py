"""The state behind the Cloud Run fake: services, revisions, traffic, tags, IAM, as Cloud Run keeps them.

gcloud computes traffic changes client-side and PUTs whole services, so this mostly stores what it
is sent; it adds what the real server adds (generations, revisions, readiness, resolved traffic, tag
URLs) and refuses what the real server refuses (404, 409, 400), validating before it stores.
"""

import base64
import copy
import datetime
import random
import re
import string
import threading
from typing import ClassVar

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


class ApiError(Exception):
    """An error answered the way Google APIs answer: {"error": {code, status, message}}."""

    STATUS: ClassVar[dict] = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS"}

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code

    def body(self):
        return {"error": {"code": self.code, "status": self.STATUS.get(self.code, "UNKNOWN"),
                          "message": str(self)}}


def _now():
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ready_conditions(kinds):
    stamp = _now()
    return [{"type": kind, "status": "True", "lastTransitionTime": stamp} for kind in kinds]


class CloudRunState:
    """Services and revisions of one fake project/region, guarded by one lock."""

    def __init__(self, project, region="europe-west1", url_hash="abc123xyz"):
        self.project = project
        self.region = region
        self.url_hash = url_hash
        self.services = {}
        self.revisions = {}
        self.tag_urls = {}  # tag (or "*") -> URL override, e.g. a local function server for smoke
        self.policies = {}  # service -> IAM policy
        self.requests = []  # (method, path) log, to prove what did or did not reach the API
        self.apis = []  # other Google APIs answered through the same proxy (FakeCloudRun.add_api)
        self.lock = threading.Lock()

    # -- views used by tests ------------------------------------------------------------------
    def traffic(self, service):
        """The served traffic table as {revision: percent} (tag-only entries left out)."""
        with self.lock:
            table = {}
            for entry in self.services[service]["status"].get("traffic", []):
                if entry.get("percent"):
                    name = entry["revisionName"]
                    table[name] = table.get(name, 0) + entry["percent"]
            return table

    def tags(self, service):
        """{tag: revision} for every tagged traffic entry."""
        with self.lock:
            return {e["tag"]: e["revisionName"] for e in self.services[service]["status"].get("traffic", [])
                    if e.get("tag")}

    def mutations(self):
        """How many writes reached the API, so tests can assert that bad input changed nothing."""
        return sum(1 for method, _ in self.requests if method in ("POST", "PUT", "DELETE", "PATCH"))

    def url_for(self, service, tag=None):
        prefix = f"{tag}---" if tag else ""
        if tag and (tag in self.tag_urls or "*" in self.tag_urls):
            return self.tag_urls.get(tag, self.tag_urls.get("*"))
        return f"https://{prefix}{service}-{self.url_hash}-ew.a.run.app"

    # -- API ----------------------------------------------------------------------------------
    def get_service(self, name):
        if name not in self.services:
            raise ApiError(404, f"Resource '{name}' of kind 'SERVICE' in region '{self.region}' "
                                f"in project '{self.project}' does not exist.")
        return self.services[name]

    def create_service(self, body):
        name = body.get("metadata", {}).get("name", "")
        if not _DNS_LABEL.match(name):
            raise ApiError(400, f"metadata.name: '{name}' is not a valid service name")
        if name in self.services:
            raise ApiError(409, f"Resource '{name}' already exists.")
        service = copy.deepcopy(body)
        meta = service["metadata"]
        meta.update(namespace=self.project, generation=0, uid=f"uid-{name}",
                    creationTimestamp=_now(), selfLink=f"/apis/serving.knative.dev/v1/namespaces/"
                    f"{self.project}/services/{name}")
        meta.setdefault("annotations", {})
        return self._apply(service, previous=None)

    def replace_service(self, name, body):
        current = self.get_service(name)
        sent = body.get("metadata", {}).get("resourceVersion")
        if sent and sent != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict: the service was modified concurrently; retry.")
        service = copy.deepcopy(body)
        for key in ("uid", "creationTimestamp", "selfLink", "namespace", "generation"):
            service["metadata"][key] = current["metadata"][key]
        return self._apply(service, previous=current)

    def list_revisions(self, service=None):
        items = [r for r in self.revisions.values()
                 if service is None or r["metadata"]["labels"]["serving.knative.dev/service"] == service]
        return {"apiVersion": "serving.knative.dev/v1", "kind": "RevisionList", "metadata": {},
                "items": sorted(items, key=lambda r: r["metadata"]["name"])}

    def get_revision(self, name):
        if name not in self.revisions:
            raise ApiError(404, f"Resource '{name}' of kind 'REVISION' in region '{self.region}' "
                                f"in project '{self.project}' does not exist.")
        return self.revisions[name]

    def public(self, service):
        """True when allUsers may invoke the service (what --allow-unauthenticated sets)."""
        with self.lock:
            return any("allUsers" in b.get("members", []) and b.get("role") == "roles/run.invoker"
                       for b in self.policies.get(service, {}).get("bindings", []))

    def iam(self, project, service, verb, body):
        if project != self.project or service not in self.services:
            raise ApiError(404, f"Resource 'projects/{project}/services/{service}' was not found.")
        policy = self.policies.setdefault(service, {"version": 1, "etag": "cG9saWN5LTA=", "bindings": []})
        if verb == "testIamPermissions":
            return {"permissions": body.get("permissions", [])}
        if verb == "setIamPolicy":
            sent = body.get("policy", {})
            if sent.get("etag") and sent["etag"] != policy["etag"]:
                raise ApiError(409, "There were concurrent policy changes; retry.")
            # etags are bytes on the wire (base64 in JSON); gcloud re-encodes them, so they must be valid
            etag = base64.b64encode(f"policy-{len(self.requests)}".encode()).decode()
            policy = dict(sent, version=1, etag=etag)
            self.policies[service] = policy
        return policy

    # -- the server side of a write -------------------------------------------------------------
    def _apply(self, service, previous):
        """Validate everything before storing anything, so a refused write changes nothing."""
        name = service["metadata"]["name"]
        generation = service["metadata"]["generation"] + 1
        template = service["spec"]["template"]
        template.setdefault("metadata", {})
        revision_name = template["metadata"].get("name")
        new_revision = None
        if revision_name:
            existing = self.revisions.get(revision_name)
            if existing is not None and existing["spec"] != template.get("spec"):
                raise ApiError(409, f"Revision named '{revision_name}' with different configuration "
                                    "already exists.")
            if existing is None:
                new_revision = revision_name
        elif previous is None or previous["spec"]["template"] != template:
            suffix = "".join(random.choices(string.ascii_lowercase, k=3))
            new_revision = f"{name}-{generation:05d}-{suffix}"
        latest = new_revision or (previous or {}).get("status", {}).get("latestReadyRevisionName")
        if latest is None:
            latest = revision_name
        traffic = self._resolve_traffic(name, service["spec"].get("traffic") or
                                        [{"latestRevision": True, "percent": 100}], latest, new_revision)
        if new_revision:
            self.revisions[new_revision] = self._revision(service, new_revision, generation)
        service["metadata"]["generation"] = generation
        service["metadata"]["resourceVersion"] = f"rv-{name}-{generation}"
        url = self.url_for(name)
        service["status"] = {
            "observedGeneration": generation,
            "conditions": _ready_conditions(["Ready", "ConfigurationsReady", "RoutesReady"]),
            "latestCreatedRevisionName": latest, "latestReadyRevisionName": latest,
            "traffic": traffic, "url": url, "address": {"url": url},
        }
        self.services[name] = service
        return service

    def _resolve_traffic(self, service, spec, latest, new_revision):
        resolved, tags, total = [], set(), 0
        for entry in spec:
            out = dict(entry)
            if entry.get("latestRevision"):
                out["revisionName"] = latest
            revision = out.get("revisionName")
            if revision != new_revision and revision not in self.revisions:
                raise ApiError(400, f"Revision '{revision}' referenced in traffic not found.")
            tag = entry.get("tag")
            if tag:
                if not _DNS_LABEL.match(tag) or tag in tags:
                    raise ApiError(400, f"spec.traffic: tag '{tag}' is invalid or used twice.")
                tags.add(tag)
                out["url"] = self.url_for(service, tag)
            percent = entry.get("percent", 0)
            if not 0 <= percent <= 100:
                raise ApiError(400, f"spec.traffic: percent {percent} is out of range.")
            total += percent
            resolved.append(out)
        if total != 100:
            raise ApiError(400, f"spec.traffic: percentages must add up to 100, got {total}.")
        return resolved

    def _revision(self, service, name, generation):
        labels = dict(service["spec"]["template"]["metadata"].get("labels", {}))
        labels.update({"serving.knative.dev/service": service["metadata"]["name"],
                       "serving.knative.dev/configuration": service["metadata"]["name"],
                       "serving.knative.dev/configurationGeneration": str(generation)})
        return {
            "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
            "metadata": {"name": name, "namespace": self.project, "generation": 1,
                         "creationTimestamp": _now(), "labels": labels,
                         "annotations": dict(service["spec"]["template"]["metadata"].get("annotations", {}))},
            "spec": copy.deepcopy(service["spec"]["template"].get("spec", {})),
            "status": {"observedGeneration": 1, "conditions": _ready_conditions(
                ["Ready", "ContainerHealthy", "ResourcesAvailable"]),
                "imageDigest": service["spec"]["template"]["spec"]["containers"][0]["image"]},
        }

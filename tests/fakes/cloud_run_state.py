"""The state behind the Cloud Run fake: services, revisions, traffic, tags, IAM, as Cloud Run keeps them.

gcloud computes traffic changes client-side and PUTs whole services, so this mostly stores what it
is sent; it adds what the real server adds (generations, revisions, readiness, resolved traffic, tag
URLs) and refuses what the real server refuses (404, 409, 400), validating before it stores.

A new revision's Ready condition is Unknown until the runtime (cloud_run_instances.py) reports its
startup probe's outcome; the service's Ready, ConfigurationsReady and RoutesReady follow from that
(gcloud waits on them), and served traffic moves only to revisions that are ready.
"""

import copy
import random
import re
import string
import threading

from tests.fakes.google_api import ApiError, Policy
from tests.fakes.google_api import now as _now

__all__ = ["ApiError", "CloudRunState"]
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
# Custom methods that Google APIs call by POST but that only read.
_READS_BY_POST = (":getIamPolicy", ":testIamPermissions", "/entries:list")


def is_write(method, path):
    if method == "POST":
        return not path.endswith(_READS_BY_POST)
    return method in ("PUT", "PATCH", "DELETE")


def _condition(kind, status, reason, message, stamp):
    condition = {"type": kind, "status": status, "lastTransitionTime": stamp}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _conditions(kinds, status, reason=None, message=""):
    stamp = _now()
    return [_condition(kind, status, reason, message, stamp) for kind in kinds]


class CloudRunState:
    """Services and revisions of one fake project/region, guarded by one lock."""

    def __init__(self, project, region="europe-west1", url_hash="abc123xyz", runtime=None, front=None):
        self.project = project
        self.region = region
        self.url_hash = url_hash
        self.services = {}
        self.revisions = {}
        self.tag_urls = {}  # tag (or "*") -> URL override, e.g. an address where nothing listens
        self.runtime = runtime  # starts revisions and reports their startup probes (None: ready at once)
        self.front = front  # serves the service and tag URLs (None: *.run.app URLs that lead nowhere)
        self.policies = {}  # service -> IAM Policy
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

    def mutations(self, under="/"):
        """How many writes reached the APIs (those whose path starts with `under`), so tests can
        assert that bad input changed nothing; reads sent by POST (getIamPolicy, entries:list) are
        not writes."""
        return sum(1 for method, path in self.requests if path.startswith(under) and is_write(method, path))

    def snapshot(self):
        """A copy of what the API keeps (services, revisions, IAM policies, tag URLs) for `restore`."""
        with self.lock:
            return copy.deepcopy({"services": self.services, "revisions": self.revisions,
                                  "policies": self.policies, "tag_urls": self.tag_urls})

    def restore(self, snapshot):
        """Puts a snapshot back; a revision it does not hold is deleted, and its instance stopped."""
        with self.lock:
            gone = set(self.revisions) - set(snapshot["revisions"])
            for key, kept in copy.deepcopy(snapshot).items():
                current = getattr(self, key)
                current.clear()
                current.update(kept)
        if self.runtime is not None:
            for revision in gone:
                self.runtime.stop(revision)

    def url_for(self, service, tag=None):
        prefix = f"{tag}---" if tag else ""
        if tag and (tag in self.tag_urls or "*" in self.tag_urls):
            return self.tag_urls.get(tag, self.tag_urls.get("*"))
        if self.front is not None:
            return self.front.url(service, tag)
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
            policy = self.policies.get(service)
            return policy is not None and "allUsers" in policy.members("roles/run.invoker")

    def iam(self, project, service, verb, body):
        if project != self.project or service not in self.services:
            raise ApiError(404, f"Resource 'projects/{project}/services/{service}' was not found.")
        policy = self.policies.setdefault(service, Policy())
        if verb == "testIamPermissions":
            return {"permissions": body.get("permissions", [])}
        if verb == "setIamPolicy":
            return policy.set(body.get("policy", {}), lambda email: True)
        return policy.get()

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
        before = (previous or {}).get("status", {})
        spec_traffic = service["spec"].get("traffic") or [{"latestRevision": True, "percent": 100}]
        self._check_traffic(name, spec_traffic, new_revision)
        if new_revision:
            self.revisions[new_revision] = self._revision(service, new_revision, generation)
        service["metadata"]["generation"] = generation
        service["metadata"]["resourceVersion"] = f"rv-{name}-{generation}"
        url = self.url_for(name)
        service["status"] = {
            "observedGeneration": generation,
            "latestCreatedRevisionName": new_revision or before.get("latestCreatedRevisionName") or revision_name,
            "traffic": before.get("traffic", []), "url": url, "address": {"url": url},
        }
        self.services[name] = service
        self._reconcile(name)
        if new_revision:
            self._start(name, new_revision)
        return service

    def _start(self, service, revision):
        """Hands a new revision to the runtime, which reports its startup probe's outcome later."""
        if self.runtime is None:  # no runtime: revisions are ready as soon as they exist
            self._settle(revision, True, "")
            return
        self.runtime.start(service, copy.deepcopy(self.revisions[revision]), self.revision_outcome)

    def revision_outcome(self, revision, ok, message):
        """Called by the runtime (from its own thread) once the startup probe has decided."""
        with self.lock:
            if revision in self.revisions:  # else it was deleted while starting
                self._settle(revision, ok, message)

    def _settle(self, revision, ok, message):
        item = self.revisions[revision]
        reason = None if ok else "HealthCheckContainerError"
        state, stamp = "True" if ok else "False", _now()
        item["status"]["conditions"] = [  # resources were available either way; the container decides
            _condition("Ready", state, reason, message, stamp),
            _condition("ContainerHealthy", state, reason, message, stamp),
            _condition("ResourcesAvailable", "True", None, "", stamp)]
        item["status"]["logUrl"] = f"https://console.cloud.google.com/logs/viewer?project={self.project}"
        self._reconcile(item["metadata"]["labels"]["serving.knative.dev/service"])

    def readiness(self, revision):
        """'True', 'False' or 'Unknown': the revision's Ready condition."""
        conditions = self.revisions[revision]["status"].get("conditions", [])
        return next((c["status"] for c in conditions if c["type"] == "Ready"), "Unknown")

    def _message(self, revision):
        conditions = self.revisions[revision]["status"].get("conditions", [])
        return next((c.get("message", "") for c in conditions if c["type"] == "Ready"), "")

    def _reconcile(self, name):
        """Recomputes a service's conditions and served traffic from its revisions' readiness, as
        Knative does: `latestRevision` means the newest ready revision, and the route moves only when
        every revision it names is ready (a failed one leaves traffic where it was)."""
        service = self.services[name]
        status = service["status"]
        ready = [r for r, item in self.revisions.items()
                 if item["metadata"]["labels"]["serving.knative.dev/service"] == name and self.readiness(r) == "True"]
        latest_ready = max(ready, key=lambda r: int(self.revisions[r]["metadata"]["labels"]
                                                    ["serving.knative.dev/configurationGeneration"]), default=None)
        if latest_ready:
            status["latestReadyRevisionName"] = latest_ready
        created = status.get("latestCreatedRevisionName")
        config = ("True", None, "")
        if created in self.revisions and self.readiness(created) != "True":
            state = self.readiness(created)
            config = (state, "RevisionFailed" if state == "False" else "Deploying",
                      f"Revision '{created}' is not ready and cannot serve traffic. {self._message(created)}"
                      if state == "False" else f"Revision '{created}' is starting.")
        route, resolved = ("True", None, ""), []
        for entry in service["spec"].get("traffic") or [{"latestRevision": True, "percent": 100}]:
            out = dict(entry)
            if entry.get("latestRevision"):
                out["revisionName"] = latest_ready or created
            revision = out.get("revisionName")
            state = self.readiness(revision) if revision in self.revisions else "False"
            if state != "True" and route[0] != "False":
                route = (state, "RevisionFailed" if state == "False" else "Deploying",
                         f"Revision '{revision}' is not ready and cannot serve traffic. {self._message(revision)}"
                         if state == "False" else f"Waiting for revision '{revision}' to be ready.")
            if entry.get("tag"):
                out["url"] = self.url_for(name, entry["tag"])
            resolved.append(out)
        if route[0] == "True":
            status["traffic"] = resolved
        overall = next((c for c in (config, route) if c[0] == "False"), None) or \
            next((c for c in (config, route) if c[0] == "Unknown"), ("True", None, ""))
        stamp = _now()
        status["conditions"] = [
            _condition(kind, state, reason, message, stamp)
            for kind, (state, reason, message) in (("Ready", overall), ("ConfigurationsReady", config),
                                                    ("RoutesReady", route))]

    def _check_traffic(self, service, spec, new_revision):
        tags, total = set(), 0
        for entry in spec:
            revision = entry.get("revisionName")
            if not entry.get("latestRevision") and revision != new_revision and revision not in self.revisions:
                raise ApiError(400, f"Revision '{revision}' referenced in traffic not found.")
            tag = entry.get("tag")
            if tag:
                if not _DNS_LABEL.match(tag) or tag in tags:
                    raise ApiError(400, f"spec.traffic: tag '{tag}' is invalid or used twice.")
                tags.add(tag)
            percent = entry.get("percent", 0)
            if not 0 <= percent <= 100:
                raise ApiError(400, f"spec.traffic: percent {percent} is out of range.")
            total += percent
        if total != 100:
            raise ApiError(400, f"spec.traffic: percentages must add up to 100, got {total}.")

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
            "status": {"observedGeneration": 1, "conditions": _conditions(
                ["Ready", "ContainerHealthy", "ResourcesAvailable"], "Unknown", "Deploying", ""),
                "imageDigest": service["spec"]["template"]["spec"]["containers"][0]["image"]},
        }

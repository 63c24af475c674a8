"""Service Usage v1 stand-in: which APIs a project has enabled, and enabling more."""

import re

from tests.fakes.google_api import ApiError, StandIn, done_operation, route, unique

_SERVICE = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*\.googleapis\.com$")


class ServiceUsage(StandIn):
    host = "serviceusage-fake"

    def __init__(self, world, enabled=()):
        super().__init__(world)
        self.state.update(enabled=set(enabled), operations={})

    def _service(self, name):
        return {"name": f"projects/{self.world.number}/services/{name}", "parent": f"projects/{self.world.number}",
                "config": {"name": name, "title": name.split(".")[0]},
                "state": "ENABLED" if name in self.state["enabled"] else "DISABLED"}

    @route("GET", r"^/v1/projects/([^/]+)/services$")
    def list(self, project, query, body):
        self.world.check_project(project)
        if query.get("filter") != "state:ENABLED":
            raise ApiError(400, "this stand-in lists enabled services only (filter=state:ENABLED)")
        services = [self._service(name) for name in sorted(self.state["enabled"])]
        return {"services": services} if services else {}

    @route("GET", r"^/v1/projects/([^/]+)/services/([^/:]+)$")
    def get(self, project, name, query, body):
        self.world.check_project(project)
        return self._service(name)

    def _enable(self, names):
        unknown = [name for name in names if not _SERVICE.match(name)]
        if unknown:
            raise ApiError(403, f"Not found or permission denied for service(s): {', '.join(unknown)}.")
        self.state["enabled"] |= set(names)
        return done_operation(f"operations/acf.p2-{self.world.number}-{unique()}",
                              {"@type": "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse",
                               "services": [self._service(name) for name in names]}, self.state["operations"])

    @route("POST", r"^/v1/projects/([^/]+)/services:batchEnable$", write=True)
    def batch_enable(self, project, query, body):
        self.world.check_project(project)
        names = body.get("serviceIds", [])
        if not 0 < len(names) <= 20:
            raise ApiError(400, "serviceIds must name 1 to 20 services.")
        return self._enable(names)

    @route("POST", r"^/v1/projects/([^/]+)/services/([^/:]+):enable$", write=True)
    def enable(self, project, name, query, body):
        self.world.check_project(project)
        return self._enable([name])

    @route("GET", r"^/v1/(operations/[^/]+)$")
    def operation(self, name, query, body):
        if name not in self.state["operations"]:
            raise ApiError(404, f"Operation {name} not found.")
        return self.state["operations"][name]

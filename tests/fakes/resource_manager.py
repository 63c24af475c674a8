"""Cloud Resource Manager v1 stand-in: the project itself and its IAM policy."""

from tests.fakes.google_api import Policy, StandIn, route


class ResourceManager(StandIn):
    host = "cloudresourcemanager-fake"

    def __init__(self, world):
        super().__init__(world)
        self.state.update(lifecycle="ACTIVE", policy=Policy())

    @route("GET", r"^/v1/projects/([^/:]+)$")
    def get(self, project, query, body):
        self.world.check_project(project)
        return {"projectNumber": self.world.number, "projectId": self.world.project_id,
                "lifecycleState": self.state["lifecycle"], "name": self.world.project_id,
                "createTime": "2026-01-05T10:00:00.000Z", "parent": {"type": "organization", "id": "1234"}}

    @route("POST", r"^/v1/projects/([^/:]+):getIamPolicy$")
    def get_policy(self, project, query, body):
        self.world.check_project(project)
        return self.state["policy"].get()

    @route("POST", r"^/v1/projects/([^/:]+):setIamPolicy$", write=True)
    def set_policy(self, project, query, body):
        self.world.check_project(project)
        return self.state["policy"].set(body.get("policy", {}), self.world.account_exists)

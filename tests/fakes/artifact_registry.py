"""Artifact Registry v1 stand-in: repositories, their IAM policies, and docker images (tags, versions).

Images arrive with `push(image)`, the way `docker push` would put them there.
"""

import hashlib
import re

from tests.fakes.google_api import ApiError, Policy, StandIn, done_operation, now, route, unique

_REPO_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_BASE = r"^/v1/projects/([^/]+)/locations/([^/]+)/repositories"
_IMAGE = re.compile(r"^([a-z0-9-]+)-docker\.pkg\.dev/([^/]+)/([^/]+)/([^:@]+)(?::([^@]+))?(?:@(sha256:[0-9a-f]{64}))?$")
_MISSING = "Requested entity was not found."


class ArtifactRegistry(StandIn):
    host = "artifactregistry-fake"

    def __init__(self, world):
        super().__init__(world)
        self.state.update(repos={}, operations={})

    def _repo(self, project, location, repo):
        self.world.check_project(project)
        found = self.state["repos"].get((location, repo))
        if found is None:
            raise ApiError(404, _MISSING)
        return found

    def push(self, image):
        """Stores IMAGE (REGION-docker.pkg.dev/PROJECT/REPO/NAME:TAG or @sha256:...); returns its digest."""
        location, project, repo, package, tag, digest = _IMAGE.match(image).groups()
        versions = self._repo(project, location, repo)["packages"].setdefault(package, {"tags": {}, "versions": {}})
        digest = digest or "sha256:" + hashlib.sha256(image.encode()).hexdigest()
        versions["versions"][digest] = {"createTime": now()}
        if tag:
            versions["tags"][tag] = digest
        return digest

    @route("GET", _BASE + r"/([^/:]+)$")
    def get(self, project, location, repo, query, body):
        return self._repo(project, location, repo)["repo"]

    @route("POST", _BASE + r"$", write=True)
    def create(self, project, location, query, body):
        self.world.check_project(project)
        repo = query.get("repositoryId", "")
        if not _REPO_ID.match(repo):
            raise ApiError(400, f"Invalid repository id {repo!r}.")
        if (location, repo) in self.state["repos"]:
            raise ApiError(409, f"the repository already exists: projects/{project}/locations/{location}/"
                                   f"repositories/{repo}")
        if body.get("format") not in ("DOCKER", "MAVEN", "NPM", "PYTHON", "APT", "YUM", "GO"):
            raise ApiError(400, f"Unsupported format {body.get('format')!r}.")
        stamp = now()
        found = {"name": f"projects/{project}/locations/{location}/repositories/{repo}", "format": body["format"],
                 "mode": "STANDARD_REPOSITORY", "createTime": stamp, "updateTime": stamp}
        self.state["repos"][(location, repo)] = {"repo": found, "policy": Policy(), "packages": {}}
        return done_operation(f"projects/{project}/locations/{location}/operations/{unique()}", found,
                              self.state["operations"])

    @route("GET", r"^/v1/(projects/[^/]+/locations/[^/]+/operations/[^/]+)$")
    def operation(self, name, query, body):
        if name not in self.state["operations"]:
            raise ApiError(404, _MISSING)
        return self.state["operations"][name]

    @route("GET", _BASE + r"/([^/:]+):getIamPolicy$")
    def get_policy(self, project, location, repo, query, body):
        return self._repo(project, location, repo)["policy"].get()

    @route("POST", _BASE + r"/([^/:]+):setIamPolicy$", write=True)
    def set_policy(self, project, location, repo, query, body):
        return self._repo(project, location, repo)["policy"].set(body.get("policy", {}), self.world.account_exists)

    @route("GET", _BASE + r"/([^/:]+)/packages/([^/]+)/tags/([^/]+)$")
    def tag(self, project, location, repo, package, tag, query, body):
        found = self._repo(project, location, repo)["packages"].get(package, {"tags": {}})
        if tag not in found["tags"]:
            raise ApiError(404, _MISSING)
        base = f"projects/{project}/locations/{location}/repositories/{repo}/packages/{package}"
        return {"name": f"{base}/tags/{tag}", "version": f"{base}/versions/{found['tags'][tag]}"}

    @route("GET", _BASE + r"/([^/:]+)/packages/([^/]+)/versions/([^/]+)$")
    def version(self, project, location, repo, package, digest, query, body):
        found = self._repo(project, location, repo)["packages"].get(package, {"versions": {}})
        if digest not in found["versions"]:
            raise ApiError(404, _MISSING)
        base = f"projects/{project}/locations/{location}/repositories/{repo}/packages/{package}"
        return {"name": f"{base}/versions/{digest}", **found["versions"][digest]}

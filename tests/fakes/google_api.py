"""What the Google API stand-ins share: routing by host and path, errors in Google's shape, IAM
policies with etags, operations that are done at once, and a log of the writes each one took.

A stand-in is plugged into the Cloud Run fake with `FakeCloudRun.add_api`; gcloud reaches it through
its endpoint override (CLOUDSDK_API_ENDPOINT_OVERRIDES_<API>=http://<api>-fake/).
"""

import base64
import copy
import datetime
import itertools
import re
from typing import ClassVar

_COUNTER = itertools.count(1)


class ApiError(Exception):
    """An error answered the way Google APIs answer: {"error": {code, status, message}}."""

    STATUS: ClassVar[dict] = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                              404: "NOT_FOUND", 409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION"}

    def __init__(self, code, message, status=None):
        super().__init__(message)
        self.code = code
        self.status = status or self.STATUS.get(code, "UNKNOWN")

    def body(self):
        return {"error": {"code": self.code, "status": self.status, "message": str(self)}}


def stamp(moment):
    """An aware datetime as Google APIs write times (RFC 3339, UTC, microseconds)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now():
    return stamp(datetime.datetime.now(datetime.UTC))


def unique(prefix=""):
    """A fresh id (etags, operation and resource ids)."""
    return f"{prefix}{next(_COUNTER):06d}"


def route(method, pattern, write=False):
    """Marks a StandIn method as the handler of `method` on paths matching `pattern`."""
    def mark(handler):
        handler.route = (method, re.compile(pattern), write)
        return handler
    return mark


class StandIn:
    """Answers the requests for its `host` that one of its @route methods matches; None otherwise.

    A handler gets the path's groups, `query` (one value per name) and `body` (the JSON sent).
    Everything it keeps lives in `self.state`, so a test can copy and restore it; each write that
    succeeds goes to `world.write_log` as (method, path), in the order the APIs took them.
    """

    host = ""

    def __init__(self, world):
        self.world = world
        self.state = {}
        self._routes = [getattr(self, name) for name in dir(type(self)) if hasattr(getattr(type(self), name), "route")]

    def __call__(self, method, host, path, query, read_body):
        if host != self.host:
            return None
        for handler in self._routes:
            wanted, pattern, write = handler.route
            match = pattern.match(path)
            if match and wanted == method:
                single = {key: values[0] for key, values in query.items()}
                answer = handler(*match.groups(), query=single, body=read_body())
                if write:
                    self.world.write_log.append((method, path))
                return answer
        return None


class Policy:
    """An IAM policy whose etag changes on every write; a stale etag is refused as IAM refuses it."""

    def __init__(self):
        self.bindings = []
        self.etag = self._etag()

    @staticmethod
    def _etag():
        return base64.b64encode(unique("policy-").encode()).decode()  # etags are bytes, base64 in JSON

    def get(self):
        policy = {"version": 1, "etag": self.etag}
        if self.bindings:
            policy["bindings"] = copy.deepcopy(self.bindings)
        return policy

    def set(self, policy, account_exists):
        if policy.get("etag") and policy["etag"] != self.etag:
            raise ApiError(409, "There were concurrent policy changes. Please retry the whole read-modify-write "
                                   "with exponential backoff.", "ABORTED")
        for binding in policy.get("bindings", []):
            if not binding.get("role", "").startswith("roles/"):
                raise ApiError(400, f"Role {binding.get('role')} is not supported for this resource.")
            for member in binding.get("members", []):
                kind, _, who = member.partition(":")
                if kind == "serviceAccount" and not account_exists(who):
                    raise ApiError(400, f"Service account {who} does not exist.")
                if kind not in ("serviceAccount", "user", "group", "domain", "principalSet", "principal") and \
                        member not in ("allUsers", "allAuthenticatedUsers"):
                    raise ApiError(400, f"Invalid member: {member}")
        self.bindings = [b for b in copy.deepcopy(policy.get("bindings", [])) if b.get("members")]
        self.etag = self._etag()
        return self.get()

    def members(self, role):
        return {m for b in self.bindings if b["role"] == role for m in b["members"]}


def proto3(value):
    """What Google's JSON of a stored message holds: fields at their default ("", 0, false, empty) left out."""
    if isinstance(value, dict):
        kept = {k: proto3(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in ("", 0, False, [], {}, None)}
    if isinstance(value, list):
        return [proto3(v) for v in value]
    return value


def done_operation(name, response, operations):
    """A long-running operation that is already done (kept in `operations` for gcloud's polling)."""
    operation = {"name": name, "done": True, "response": copy.deepcopy(response)}
    operations[name] = operation
    return operation

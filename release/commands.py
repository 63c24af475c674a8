"""The subcommands: validate every input first, then read the service, then change it at most once."""

import json
import os
import sys

from release import config, help_text, smoke, status, traffic, versions
from release.errors import ReleaseError, UsageError
from release.gcloud import Gcloud


def _service_or_fail(gcloud):
    service = gcloud.service()
    if service is None:
        raise ReleaseError(f"service {gcloud.target.service} does not exist in {gcloud.target.project}/"
                           f"{gcloud.target.region}; run ./deploy.sh deploy vX.Y.Z first")
    return service


def deploy(version, image=None):
    """A new revision tagged for `version` with no traffic (all of it when creating the service)."""
    tag = versions.tag_for(version)
    target, image = config.target(), config.image(version, image)
    config.deploy_flags()  # bad settings fail here, before gcloud is asked anything
    gcloud = Gcloud(target)
    service = gcloud.service()
    flags = config.deploy_flags(creating=service is None)
    existing = traffic.tags(service).get(tag) if service else None
    if existing:  # a re-run: same image is a no-op, another image is refused
        deployed = gcloud.read("run", "revisions", "describe", existing[0])
        deployed_image = deployed["spec"]["containers"][0]["image"]
        if deployed_image != image:
            raise ReleaseError(f"{version} is already deployed as {existing[0]} from {deployed_image}; "
                               "a version is immutable, release a new one")
        print(f"{version} is already deployed as {existing[0]}; nothing to do", file=sys.stderr)
        print(existing[1])
        return 0
    # Cloud Run refuses --no-traffic on creation; on an existing service it keeps traffic pinned
    # where it is, so a deploy never moves traffic after a rollback.
    placement = [] if service is None else ["--no-traffic"]
    deployed = gcloud.change("run", "deploy", target.service, f"--image={image}", f"--tag={tag}",
                             *placement, *flags)
    url = traffic.tags(deployed).get(tag, (None, None))[1]
    if not url:
        raise ReleaseError(f"deployed, but Cloud Run reports no URL for tag {tag}; see ./deploy.sh status")
    print(url)
    return 0


def _move(version, build_args, label):
    target = config.target()
    gcloud = Gcloud(target)
    service = _service_or_fail(gcloud)
    revision = traffic.revision_of(service, version) if version else traffic.previous(service)
    args = build_args(service, revision)
    if args is None:
        print(f"{revision} already serves 100%; nothing to do", file=sys.stderr)
        return 0
    targets = gcloud.change("run", "services", "update-traffic", target.service, *args) or []
    served = {t["revisionName"]: int(t["statusPercent"]) for t in targets
              if t.get("revisionName") and str(t.get("statusPercent", "0")).isdigit() and int(t["statusPercent"])}
    print(f"{label}: {json.dumps(served, sort_keys=True)}")
    return 0


def _pin(service, revision):
    return None if traffic.serving(service) == {revision: 100} else traffic.pin_args(service, revision)


def canary(version, share):
    versions.parse(version)
    share = traffic.percent(share)
    return _move(version, lambda service, revision: traffic.split_args(service, revision, share), "canary")


def promote(version):
    versions.parse(version)
    return _move(version, _pin, "promoted")


def rollback(version=None):
    if version is not None:
        versions.parse(version)
    return _move(version, _pin, "rolled back")


def smoke_test(version):
    tag = versions.tag_for(version)
    gcloud = Gcloud(config.target())
    service = _service_or_fail(gcloud)
    traffic.revision_of(service, version)
    url = traffic.tags(service)[tag][1]
    wait = float(os.environ.get("SMOKE_WAIT", "60"))
    result = smoke.check(url, smoke.token_for(url, gcloud), wait)
    print(json.dumps({"version": version, **result}))
    return 0


def show_status(as_json=False):
    target = config.target()
    gcloud = Gcloud(target)
    service = _service_or_fail(gcloud)
    render = status.as_json if as_json else status.as_table
    print(render(target, service, gcloud.revisions()))
    return 0


# name -> (handler, minimum args, maximum args, synopsis)
_COMMANDS = {
    "deploy": (None, 1, 3, "deploy vX.Y.Z [--image IMAGE]"),
    "smoke": (smoke_test, 1, 1, "smoke vX.Y.Z"),
    "canary": (canary, 2, 2, "canary vX.Y.Z PERCENT"),
    "promote": (promote, 1, 1, "promote vX.Y.Z"),
    "rollback": (rollback, 0, 1, "rollback [vX.Y.Z]"),
    "status": (None, 0, 1, "status [--json]"),
}


def dispatch(argv):
    if not argv or argv[0] in ("help", "-h", "--help"):
        print(help_text.render())
        return 0
    name, args = argv[0], argv[1:]
    if name not in _COMMANDS:
        raise UsageError(f"unknown command {name!r} (try ./deploy.sh help)")
    handler, low, high, synopsis = _COMMANDS[name]
    if not low <= len(args) <= high:
        raise UsageError(f"usage: ./deploy.sh {synopsis}")
    if name == "deploy":
        return deploy(*_deploy_args(args, synopsis))
    if name == "status":
        if args and args != ["--json"]:
            raise UsageError(f"usage: ./deploy.sh {synopsis}")
        return show_status(as_json=bool(args))
    if any(arg.startswith("-") for arg in args):
        raise UsageError(f"usage: ./deploy.sh {synopsis}")
    return handler(*args)


def _deploy_args(args, synopsis):
    version, rest = args[0], args[1:]
    if not rest:
        return version, None
    if len(rest) == 1 and rest[0].startswith("--image=") and rest[0] != "--image=":
        return version, rest[0].split("=", 1)[1]
    if len(rest) == 2 and rest[0] == "--image" and rest[1] and not rest[1].startswith("-"):
        return version, rest[1]
    raise UsageError(f"usage: ./deploy.sh {synopsis}")

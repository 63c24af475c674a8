"""The subcommands: validate every input first, then read the service, then change it at most once."""

import json
import os
import sys

from release import config, smoke, status, traffic, versions
from release.errors import ReleaseError
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

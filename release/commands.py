"""The subcommands: validate every input first, then read the service, then change it.

A command changes the service once, except to undo or finish its own change: a failed deploy takes
its tag back, a watched canary is rolled back or promoted.
"""

import json
import sys

from release import canary as canaries
from release import changes, compare, config, readiness, smoke, status, traffic, versions
from release.errors import ReleaseError, UsageError
from release.gcloud import Gcloud
from release.monitoring import Monitoring


def _service_or_fail(gcloud):
    service = gcloud.service()
    if service is None:
        raise ReleaseError(f"service {gcloud.target.service} does not exist in {gcloud.target.project}/"
                           f"{gcloud.target.region}; run ./deploy.sh deploy vX.Y.Z first")
    return service


def deploy(version, image=None, dry_run=False):
    """A new revision tagged for `version` with no traffic (all of it when nothing serves yet).

    Says first what it changes against the revision serving now; with `dry_run`, only says it.
    """
    tag = versions.tag_for(version)
    target, image = config.target(), config.image(version, image)
    config.deploy_flags()  # bad settings fail here, before gcloud is asked anything
    wanted = config.revision()
    gcloud = Gcloud(target)
    service = gcloud.service()
    flags = config.deploy_flags(creating=service is None)
    existing = traffic.tags(service).get(tag) if service else None
    if existing:  # a re-run: same image is a no-op, another image is refused
        deployed = gcloud.revision(existing[0])
        deployed_image = deployed["spec"]["containers"][0]["image"]
        if deployed_image != image:
            raise ReleaseError(f"{version} is already deployed as {existing[0]} from {deployed_image}; "
                               "a version is immutable, release a new one")
        print(f"{version} is already deployed as {existing[0]}; nothing to do", file=sys.stderr)
        print(existing[1])
        return 0
    serving = traffic.main_revision(service)
    current, image_now = changes.of_revision(gcloud.revision(serving) if serving else {})
    share = traffic.serving(service).get(serving, 0)
    print(changes.describe(version, serving, share, changes.changes(current, wanted, image_now, image)), file=sys.stderr)
    if dry_run:
        return 0
    # Cloud Run refuses --no-traffic on creation; on an existing service it keeps traffic pinned
    # where it is, so a deploy never moves traffic after a rollback. With nothing serving (the
    # first revision failed), the new one takes it all, as on creation.
    placement = ["--no-traffic"] if traffic.serving(service) else []
    try:
        deployed = gcloud.change("run", "deploy", target.service, f"--image={image}", f"--tag={tag}",
                                 *placement, *flags)
    except ReleaseError as error:
        raise readiness.explain(gcloud, service, tag, version, error) from None
    url = traffic.tags(deployed).get(tag, (None, None))[1]
    if not url:
        raise ReleaseError(f"deployed, but Cloud Run reports no URL for tag {tag}; see ./deploy.sh status")
    print(url)
    return 0


def _move(version, build_args, label):
    """`build_args(service, revision)` gives (update-traffic args, the served table they make), or
    None when the traffic already is that way."""
    gcloud = Gcloud(config.target())
    service = _service_or_fail(gcloud)
    revision = traffic.revision_of(service, version) if version else traffic.previous(service)
    built = build_args(service, revision)
    if built is None:
        print(f"{revision} already serves 100%; nothing to do", file=sys.stderr)
        return 0
    args, table = built
    served = gcloud.update_traffic(*args, settled=lambda now: traffic.serving(now) == table)
    print(f"{label}: {json.dumps(served, sort_keys=True)}", flush=True)
    return 0


def _pin(service, revision):
    if traffic.serving(service) == {revision: 100}:
        return None
    return traffic.pin_args(service, revision), {revision: 100}


def _split(share):
    def build(service, revision):
        args = traffic.split_args(service, revision, share)
        return args, {revision: share, traffic.main_revision(service, exclude=revision): 100 - share}
    return build


def canary(version, share, watch_s=None, gates=None, promote_after=True):
    """PERCENT to `version`; with `watch_s`, judged by its metrics, then rolled back or promoted."""
    versions.parse(version)
    share = traffic.percent(share)
    if watch_s is None:
        return _move(version, _split(share), "canary")
    target = config.target()
    gcloud = Gcloud(target)
    service = _service_or_fail(gcloud)
    revision = traffic.revision_of(service, version)
    args, table = _split(share)(service, revision)
    stable = traffic.main_revision(service, exclude=revision)
    monitoring = Monitoring(target, gcloud.access_token)
    canaries.check_access(monitoring)
    served = gcloud.update_traffic(*args, settled=lambda now: traffic.serving(now) == table)
    print(f"canary: {json.dumps(served, sort_keys=True)}", flush=True)
    try:
        return canaries.watch(gcloud, monitoring, version, revision, stable, watch_s, gates, promote_after)
    except KeyboardInterrupt:
        print(f"canary watch interrupted: traffic left as it is ({revision} at {share}%); "
              "./deploy.sh promote or ./deploy.sh rollback decides", file=sys.stderr)
        raise


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
    result = smoke.check(url, smoke.token_for(url, gcloud), smoke.wait_seconds())
    print(json.dumps({"version": version, **result}))
    return 0


def compare_versions(new_version, old_version=None, data=None, gates=None):
    """The rows of `data` (or of NEW's model's examples) to NEW and OLD; fails past the gates."""
    versions.parse(new_version)
    if old_version is not None:
        versions.parse(old_version)
    rows = compare.rows_from_file(data) if data else None  # a bad file fails before gcloud is asked
    gcloud = Gcloud(config.target())
    service = _service_or_fail(gcloud)
    new = traffic.revision_of(service, new_version)
    old = traffic.revision_of(service, old_version) if old_version else traffic.main_revision(service, exclude=new)
    if old is None:
        raise ReleaseError(f"{new} serves all traffic, so there is nothing to compare it with; name OLD")
    if old == new:
        raise UsageError(f"{new_version} and {old_version} are the same revision ({new})")
    new_url, old_url = traffic.url_of(service, new), traffic.url_of(service, old)
    if not old_url:
        raise ReleaseError(f"{old} (serving most traffic) has no tag URL to reach it by; name OLD as a version")
    source = data
    if rows is None:
        rows, source = compare.default_rows(gcloud, gcloud.revision(new))
    sides = [compare.side(url, smoke.token_for(url, gcloud), rows) for url in (new_url, old_url)]
    info = smoke.wait_ready(new_url, sides[0]["token"], smoke.wait_seconds())
    smoke.wait_ready(old_url, sides[1]["token"], smoke.wait_seconds())
    report, failures = compare.run(*sides, rows, info.get("task"), gates)
    report["new"].update(revision=new, version=new_version)
    report["old"].update(revision=old, version=old_version or _version_of(service, old))
    print(json.dumps({"data": source, **report, "passed": not failures}))
    if failures:
        raise ReleaseError("compare: " + "; ".join(failures))
    return 0


def _version_of(service, revision):
    found = sorted(versions.version_for(tag) for tag, (name, _) in traffic.tags(service).items()
                   if name == revision and versions.version_for(tag))
    return found[-1] if found else None


def show_status(as_json=False):
    target = config.target()
    gcloud = Gcloud(target)
    service = _service_or_fail(gcloud)
    render = status.as_json if as_json else status.as_table
    print(render(target, service, gcloud.revisions()))
    return 0

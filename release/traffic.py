"""Reading a service's traffic table and choosing where traffic goes; pure functions, no I/O."""

from release.errors import ReleaseError, UsageError
from release.versions import PREVIOUS_TAG, tag_for, version_for


def entries(service):
    """status.traffic: what actually serves, with latestRevision already resolved by Cloud Run."""
    return (service or {}).get("status", {}).get("traffic", []) or []


def serving(service):
    """{revision: percent} for every revision receiving traffic."""
    table = {}
    for entry in entries(service):
        if entry.get("percent"):
            table[entry["revisionName"]] = table.get(entry["revisionName"], 0) + entry["percent"]
    return table


def served_by(targets):
    """{revision: percent} from the traffic targets `gcloud run services update-traffic` prints."""
    return {t["revisionName"]: int(t["statusPercent"]) for t in targets or []
            if t.get("revisionName") and str(t.get("statusPercent", "0")).isdigit() and int(t["statusPercent"])}


def tags(service):
    """{tag: (revision, url)} for every tagged entry."""
    return {e["tag"]: (e.get("revisionName"), e.get("url")) for e in entries(service) if e.get("tag")}


def revision_of(service, version):
    """The revision tagged for `version`; UsageError if that version was never deployed here."""
    found = tags(service).get(tag_for(version))
    if not found or not found[0]:
        raise UsageError(f"unknown version {version}: no revision tagged {tag_for(version)} "
                         f"(see `./deploy.sh status`)")
    return found[0]


def url_of(service, revision):
    """A tag URL reaching `revision`: its release tag's if it has one, else any of its tags', else None."""
    found = sorted((version_for(tag) is None, tag, url) for tag, (name, url) in tags(service).items()
                   if name == revision and url)
    return found[0][2] if found else None


def _generation(name):
    """Revision names end in -NNNNN-xyz (the configuration generation): newer names sort higher."""
    parts = name.rsplit("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else -1


def main_revision(service, exclude=None):
    """The revision with the most traffic other than `exclude` (the newest one on a tie), or None."""
    table = {r: p for r, p in serving(service).items() if r != exclude}
    if not table:
        return None
    return max(table, key=lambda r: (table[r], _generation(r)))


def previous(service):
    """The revision that served before the last traffic move, as remembered by the `previous` tag."""
    found = tags(service).get(PREVIOUS_TAG)
    if not found or not found[0]:
        raise ReleaseError("no previous revision recorded yet; roll back to a named version: "
                           "./deploy.sh rollback vX.Y.Z")
    return found[0]


def percent(text):
    """A canary share: an integer from 1 to 99."""
    if not (text or "").isdigit() or not 1 <= int(text) <= 99:
        raise UsageError(f"percent must be an integer from 1 to 99, got {text!r}")
    return int(text)


def pin_args(service, revision):
    """`update-traffic` args that send 100% to `revision` and remember who served before."""
    args = [f"--to-revisions={revision}=100"]
    before = main_revision(service, exclude=revision)
    if before:
        args.append(f"--update-tags={PREVIOUS_TAG}={before}")
    return args


def split_args(service, revision, share):
    """`update-traffic` args for a canary: `share`% to `revision`, the rest to the main revision."""
    before = main_revision(service, exclude=revision)
    if before is None:
        raise ReleaseError(f"{revision} already serves all traffic; there is nothing to split it with")
    return [f"--to-revisions={revision}={share},{before}={100 - share}",
            f"--update-tags={PREVIOUS_TAG}={before}"]

"""Release versions (`vMAJOR.MINOR.PATCH`) and the Cloud Run traffic tags derived from them."""

import re

from release.errors import UsageError

# Strict: no leading zeros, no pre-release or build suffix. A suffix could not be mapped to a DNS
# label one-to-one (dots and dashes would collide), and releases are what get deployed.
_SEMVER = re.compile(r"^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")

# The tag that remembers which revision served before the last traffic move (used by rollback).
PREVIOUS_TAG = "previous"


def parse(version):
    """Returns the version unchanged if it is strict `vX.Y.Z`, else raises UsageError."""
    if not _SEMVER.match(version or ""):
        raise UsageError(f"not a release version: {version!r} (expected vMAJOR.MINOR.PATCH, e.g. v1.2.3)")
    return version


def tag_for(version):
    """`v1.2.3` -> `v1-2-3`: Cloud Run traffic tags must be DNS labels."""
    return parse(version).replace(".", "-")


def version_for(tag):
    """`v1-2-3` -> `v1.2.3`, or None for tags that are not release tags (e.g. `previous`)."""
    candidate = (tag or "").replace("-", ".")
    return candidate if _SEMVER.match(candidate) else None

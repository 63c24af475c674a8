"""The errors a release command can end with; each becomes one line on stderr and an exit code."""


class ReleaseError(Exception):
    """A failure that leaves the service as it was; the message says what to fix."""

    exit_code = 1


class UsageError(ReleaseError):
    """Bad input (arguments or env vars), caught before any call that changes something."""

    exit_code = 2

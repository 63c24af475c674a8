"""Command-line parsing: one-line usage errors before any command runs."""

from release import help_text
from release.commands import canary, deploy, promote, rollback, show_status, smoke_test
from release.errors import UsageError

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

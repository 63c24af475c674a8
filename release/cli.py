"""Command-line parsing with argparse subcommands: one-line usage errors before any command runs.

Each subcommand is one `_add_*` call: its arguments, and the function that runs it with the parsed
namespace. A new command adds one entry to `_COMMANDS`.
"""

import argparse

from release import help_text
from release.commands import canary, deploy, promote, rollback, show_status, smoke_test
from release.doctor import doctor
from release.errors import UsageError
from release.observe import observe
from release.setup import setup


class _Parser(argparse.ArgumentParser):
    """Reports a usage error as one line (a UsageError, exit 2) instead of printing and exiting."""

    def error(self, message):
        raise UsageError(f"usage: ./deploy.sh {self.synopsis}: {message}")

    def exit(self, status=0, message=None):  # -h/--help on a subcommand prints and ends here
        raise SystemExit(status)


def _positional(text):
    """A non-empty value; one that starts with '-' is a misplaced option, not a value."""
    if not text or text.startswith("-"):
        raise argparse.ArgumentTypeError(f"expected a value, got {text!r}")
    return text


def _add_deploy(sub):
    sub.add_argument("version", type=_positional)
    sub.add_argument("--image", type=_positional, default=None)
    return lambda a: deploy(a.version, a.image)


def _add_smoke(sub):
    sub.add_argument("version", type=_positional)
    return lambda a: smoke_test(a.version)


def _add_canary(sub):
    sub.add_argument("version", type=_positional)
    sub.add_argument("percent", type=_positional)
    return lambda a: canary(a.version, a.percent)


def _add_promote(sub):
    sub.add_argument("version", type=_positional)
    return lambda a: promote(a.version)


def _add_rollback(sub):
    sub.add_argument("version", type=_positional, nargs="?")
    return lambda a: rollback(a.version)


def _add_status(sub):
    sub.add_argument("--json", action="store_true")
    return lambda a: show_status(as_json=a.json)


def _add_doctor(sub):
    sub.add_argument("version", type=_positional, nargs="?")
    return lambda a: doctor(a.version)


def _add_setup(sub):
    sub.add_argument("--dry-run", action="store_true")
    return lambda a: setup(dry_run=a.dry_run)


def _add_observe(sub):
    sub.add_argument("--dry-run", action="store_true")
    return lambda a: observe(dry_run=a.dry_run)


# name -> (synopsis, adder)
_COMMANDS = {
    "deploy": ("deploy vX.Y.Z [--image IMAGE]", _add_deploy),
    "smoke": ("smoke vX.Y.Z", _add_smoke),
    "canary": ("canary vX.Y.Z PERCENT", _add_canary),
    "promote": ("promote vX.Y.Z", _add_promote),
    "rollback": ("rollback [vX.Y.Z]", _add_rollback),
    "status": ("status [--json]", _add_status),
    "doctor": ("doctor [vX.Y.Z]", _add_doctor),
    "setup": ("setup [--dry-run]", _add_setup),
    "observe": ("observe [--dry-run]", _add_observe),
}


def _parser():
    parser = _Parser(prog="./deploy.sh", add_help=False)
    parser.synopsis = "COMMAND [ARGS] (try ./deploy.sh help)"
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name, (synopsis, add) in _COMMANDS.items():
        sub = commands.add_parser(name, prog=f"./deploy.sh {name}", add_help=False)
        sub.synopsis = synopsis
        sub.set_defaults(run=add(sub))
    return parser


def dispatch(argv):
    if not argv or argv[0] in ("help", "-h", "--help"):
        print(help_text.render())
        return 0
    if argv[0] not in _COMMANDS:
        raise UsageError(f"unknown command {argv[0]!r} (try ./deploy.sh help)")
    args, extra = _parser().parse_known_args(argv)
    if extra:
        raise UsageError(f"usage: ./deploy.sh {_COMMANDS[argv[0]][0]}: unexpected {' '.join(extra)}")
    return args.run(args)

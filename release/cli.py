"""Command-line parsing with argparse subcommands: one-line usage errors before any command runs.

Each subcommand is one `_add_*` call: its arguments, and the function that runs it with the parsed
namespace. A new command adds one entry to `_COMMANDS`.
"""

import argparse
import re

from release import canary as canaries
from release import compare, config, help_text
from release.commands import canary, compare_versions, deploy, promote, rollback, show_status, smoke_test
from release.doctor import doctor
from release.errors import UsageError
from release.observe import observe
from release.setup import setup

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h)?$")


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


def duration(text):
    """Seconds from `90`, `90s`, `10m` or `1h`."""
    match = _DURATION.match((text or "").strip())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration such as 90s, 10m or 1h, got {text!r}")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]


def _number(kind, low, high=None):
    """A type for thresholds: `kind` within [low, high]; its default may come from an env var."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'} {span}, "
                                             f"got {text!r}")
        return value
    return parse


def _gate(sub, flag, env, kind):
    sub.add_argument(flag, type=kind, default=config.threshold(env), metavar=env.split("_", 1)[1])


def _add_deploy(sub):
    sub.add_argument("version", type=_positional)
    sub.add_argument("--image", type=_positional, default=None)
    sub.add_argument("--dry-run", action="store_true")
    return lambda a: deploy(a.version, a.image, dry_run=a.dry_run)


def _add_smoke(sub):
    sub.add_argument("version", type=_positional)
    return lambda a: smoke_test(a.version)


def _add_canary(sub):
    sub.add_argument("version", type=_positional)
    sub.add_argument("percent", type=_positional)
    sub.add_argument("--watch", type=duration, default=None)
    sub.add_argument("--no-promote", action="store_true")
    _gate(sub, "--interval", "CANARY_INTERVAL", duration)
    _gate(sub, "--min-requests", "CANARY_MIN_REQUESTS", _number(int, 1))
    _gate(sub, "--max-error-rate", "CANARY_MAX_ERROR_RATE", _number(float, 0.0, 1.0))
    _gate(sub, "--max-latency-ratio", "CANARY_MAX_LATENCY_RATIO", _number(float, 1.0))
    _gate(sub, "--latency-slack-ms", "CANARY_LATENCY_SLACK_MS", _number(float, 0.0))

    def run(a):
        if a.no_promote and a.watch is None:
            raise UsageError(f"usage: ./deploy.sh {_COMMANDS['canary'][0]}: --no-promote needs --watch")
        gates = canaries.Gates(a.interval, a.min_requests, a.max_error_rate, a.max_latency_ratio,
                               a.latency_slack_ms)
        return canary(a.version, a.percent, a.watch, gates, promote_after=not a.no_promote)
    return run


def _add_compare(sub):
    sub.add_argument("new", type=_positional)
    sub.add_argument("old", type=_positional, nargs="?")
    sub.add_argument("--data", type=_positional, default=None)
    _gate(sub, "--min-agreement", "COMPARE_MIN_AGREEMENT", _number(float, 0.0, 1.0))
    _gate(sub, "--max-latency-ratio", "COMPARE_MAX_LATENCY_RATIO", _number(float, 1.0))
    _gate(sub, "--max-errors", "COMPARE_MAX_ERRORS", _number(int, 0))
    _gate(sub, "--tolerance", "COMPARE_TOLERANCE", _number(float, 0.0))

    def run(a):
        gates = compare.Gates(a.min_agreement, a.max_latency_ratio, a.max_errors, a.tolerance)
        return compare_versions(a.new, a.old, a.data, gates)
    return run


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
    "deploy": ("deploy vX.Y.Z [--image IMAGE] [--dry-run]", _add_deploy),
    "smoke": ("smoke vX.Y.Z", _add_smoke),
    "compare": ("compare NEW [OLD] [--data FILE] [--min-agreement A] [--max-latency-ratio R] [--max-errors N] "
                "[--tolerance T]", _add_compare),
    "canary": ("canary vX.Y.Z PERCENT [--watch DURATION [--no-promote] [--interval I] [--min-requests N] "
               "[--max-error-rate E] [--max-latency-ratio R] [--latency-slack-ms MS]]", _add_canary),
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

"""python -m client URL (--features F ... | --json FILE) [--audience A] [--no-auth] ...

Prints the function's JSON answer. Exit status: 0 on success, 1 when the function answered an error
(its JSON goes to stdout too), 2 for a usage, credential, network or timeout problem.
"""

import argparse
import json
import logging
import pathlib
import sys

import requests

from client import auth, call


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m client", description="Call the prediction function.")
    parser.add_argument("url", help="the function's URL, e.g. https://SERVICE-HASH-REGION.a.run.app/predict")
    body = parser.add_mutually_exclusive_group(required=True)
    body.add_argument("--features", nargs="+", type=float, metavar="F", help="one row of feature values")
    body.add_argument("--json", metavar="FILE", help="request body from a JSON file ('-' for stdin)")
    parser.add_argument("--audience", help="ID token audience (default: the URL's scheme and host)")
    parser.add_argument("--auth", choices=("auto", "always", "never"), default="auto",
                        help="send an ID token: auto skips it for http://127.0.0.1 and localhost (default auto)")
    parser.add_argument("--no-auth", dest="auth", action="store_const", const="never", help="same as --auth never")
    parser.add_argument("--timeout", type=_seconds, default=30, help="seconds per attempt (default 30)")
    parser.add_argument("--retries", type=_count, default=5, help="retries on 429/503 and refused connections (default 5)")
    parser.add_argument("--max-wait", type=_seconds, default=30,
                        help="longest wait between attempts, in seconds (default 30)")
    parser.add_argument("--quiet", action="store_true", help="do not report retries on stderr")
    return parser.parse_args(argv)


def load_body(args):
    if args.features is not None:
        return {"features": args.features}
    text = sys.stdin.read() if args.json == "-" else pathlib.Path(args.json).read_text()
    return json.loads(text)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # retries are reported below, once each
    log = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr))
    try:
        body = load_body(args)
        token = None
        if auth.needs_token(args.url, args.auth):
            token = auth.id_token(args.audience or auth.audience_for(args.url), timeout=args.timeout)
        response = call.post(args.url, body, token, timeout=args.timeout, retries=args.retries,
                             max_wait=args.max_wait, log=log)
    except (OSError, ValueError, auth.AuthError, requests.RequestException) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(response.text)
    if not response.ok:
        print(f"error: HTTP {response.status_code}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

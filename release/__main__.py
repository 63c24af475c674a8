"""Entry point: `python -m release COMMAND ...` (what ./deploy.sh runs)."""

import sys

from release import cli
from release.errors import ReleaseError


def main(argv):
    try:
        return cli.dispatch(argv)
    except ReleaseError as error:
        print(f"deploy.sh: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env bash
#
# Releases the predictor to Cloud Run: one revision per vX.Y.Z tag, with comparisons, watched
# canaries, promotion, rollback and status; sets up, checks and monitors the Google Cloud project
# behind it. The logic lives in the `release` Python package (standard library only);
# this script finds an interpreter and hands over. Run `./deploy.sh help` for commands and env vars.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly ROOT

err() {
  echo "deploy.sh: $*" >&2
}

usage() {
  echo "Usage: ./deploy.sh deploy|smoke|compare|canary|promote|rollback|status|setup|doctor|observe|help [ARGS]" >&2
  echo "Run ./deploy.sh help for the commands, env vars and defaults." >&2
}

# Prints the Python to use: PYTHON, else the repo's virtualenv, else python3 on PATH.
find_python() {
  local candidate
  for candidate in "${PYTHON:-}" "${ROOT}/.venv/bin/python" "$(command -v python3 || true)"; do
    if [[ -n "${candidate}" && -x "${candidate}" ]]; then
      echo "${candidate}"
      return 0
    fi
  done
  return 1
}

main() {
  if [[ $# -eq 0 ]]; then
    usage
    exit 2
  fi
  local python
  if ! python="$(find_python)"; then
    err "no Python 3 found; install python3 or set PYTHON to an interpreter"
    exit 1
  fi
  PYTHONPATH="${ROOT}${PYTHONPATH:+:${PYTHONPATH}}" exec "${python}" -m release "$@"
}

main "$@"

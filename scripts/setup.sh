#!/usr/bin/env bash
#
# Checks the Debian packages a make target needs and installs the missing ones with apt-get where
# it may (as root, or through passwordless sudo); otherwise stops with one line naming them and the
# command that installs them. When everything is there it costs one dpkg-query (no apt-get update).

set -euo pipefail

readonly PYTHON="${PYTHON:-python3}"
readonly VENV="${VENV:-.venv}"
readonly GCLOUD="${GCLOUD:-gcloud}"

# What `make test` adds to `make run`'s needs, and why.
readonly TEST_PACKAGES=(
  # tests/test_secrets.py, test_lint.py and test_image.py read the repository through git
  git
  # the system trust store: podman pulls the base image over TLS, and scripts/image.sh hands the
  # bundle to pip inside the build
  ca-certificates
  # building and running the image (tests/test_image.py); runc, not crun (podman's first choice),
  # as crun fails on hosts with a hybrid cgroup layout (scripts/container/containers.conf)
  podman runc
  # podman's network for `--publish`: netavark, which sets up port forwarding with iptables
  netavark iptables
  # podman run by a user other than root: subordinate IDs and user-mode networking
  uidmap slirp4netns
  # a stand-in base image where no registry answers (scripts/container/base.sh)
  debootstrap
  # the benchmark's load generator (tests/test_bench_smoke.py)
  wrk
)

usage() {
  cat <<EOF
Usage: ${0##*/} run|test
  run   what \`make run\` needs: Python's venv module with ensurepip (Debian: python3-venv)
  test  also what the tests need: ${TEST_PACKAGES[*]}, and the gcloud CLI
Missing Debian packages are installed with apt-get as root or with passwordless sudo; otherwise
the script names them and the command to install them, and fails.
Env: PYTHON (python3) makes the venv, VENV (.venv) skips the venv check when it exists,
GCLOUD (gcloud) is the gcloud CLI.
EOF
}

err() {
  echo "[$(date +'%Y-%m-%dT%H:%M:%S%z')] ${0##*/}: $*" >&2
}

# Prints those of the given packages that no installed package is or provides, one a line (Docker's
# packages provide runc, for one, and conflict with Debian's).
missing_packages() {
  local -A installed=()
  local status name provides item
  local -a items
  while read -r status name provides; do
    [[ "${status}" == ii ]] || continue
    installed["${name}"]=1
    # Provides reads like "foo (= 1.2), bar": keep the names.
    read -r -a items <<< "${provides//,/ }"
    for item in "${items[@]}"; do
      [[ "${item}" == "("* || "${item}" == *")" ]] || installed["${item}"]=1
    done
  done < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Provides}\n' 2> /dev/null)
  for name in "$@"; do
    [[ -n "${installed["${name}"]:-}" ]] || echo "${name}"
  done
}

# Whether the venv's interpreter is there already, or Python can make one (Debian ships ensurepip
# apart from Python, in python3-venv).
venv_possible() {
  [[ -x "${VENV}/bin/python" ]] || "${PYTHON}" -c 'import ensurepip, venv' > /dev/null 2>&1
}

# Prints the command that runs apt-get as root: nothing for root itself, `sudo -n` where sudo asks
# no password; fails otherwise.
as_root() {
  if ((EUID == 0)); then
    return 0
  fi
  command -v sudo > /dev/null && sudo -n true > /dev/null 2>&1 && echo "sudo -n"
}

main() {
  local target="${1:-}"
  local -a wanted=() missing=()
  case "${target}" in
    run) ;;
    test) wanted=("${TEST_PACKAGES[@]}") ;;
    -h | --help | help)
      usage
      return 0
      ;;
    *)
      usage >&2
      return 2
      ;;
  esac

  venv_possible || missing+=(python3-venv)
  if ! command -v dpkg-query > /dev/null; then
    if ((${#missing[@]} > 0)); then
      err "${PYTHON} cannot make a virtual environment (no ensurepip); install your system's Python venv package"
      return 1
    fi
    ((${#wanted[@]} == 0)) || err "not a Debian system: make sure these (or their equivalents) are installed: ${wanted[*]}"
  elif ((${#wanted[@]} > 0)); then
    mapfile -t -O "${#missing[@]}" missing < <(missing_packages "${wanted[@]}")
  fi

  local failed=0 prefix
  local -a root
  if ((${#missing[@]} > 0)); then
    if prefix="$(as_root)"; then
      read -r -a root <<< "${prefix}"
      err "installing the missing Debian packages: ${missing[*]}"
      # dpkg's progress goes to stdout; its errors and apt's go to stderr. Installing never removes a
      # package: apt-get stops instead.
      "${root[@]}" apt-get update -qq > /dev/null
      "${root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        --no-remove "${missing[@]}" > /dev/null
    else
      err "missing Debian packages: ${missing[*]}; install them with:" \
        "sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
      failed=1
    fi
  fi
  if [[ "${target}" == test ]] && ! command -v "${GCLOUD}" > /dev/null; then
    err "the gcloud CLI is missing (package google-cloud-cli, from Google's apt repository, not" \
      "Debian's: https://cloud.google.com/sdk/docs/install); tests/test_deploy.py drives it"
    failed=1
  fi
  return "${failed}"
}

main "$@"

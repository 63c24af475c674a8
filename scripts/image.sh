#!/usr/bin/env bash
#
# Builds the container image (Dockerfile at the repo root) with docker when its daemon answers,
# else with podman. With podman it applies the engine settings our build hosts need
# (scripts/container/containers.conf) and, where the base image cannot be pulled, builds on a
# stand-in made from Debian packages (scripts/container/base.sh). Prints the image name on stdout.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly CONTAINER_DIR="${ROOT}/scripts/container"
readonly DEFAULT_BASE="python:3.11-slim"
readonly CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

usage() {
  cat <<EOF
Usage: ${0##*/} [-t IMAGE] [-e docker|podman] [-b BASE_IMAGE] [-s STORE_DIR] [-r REQUIREMENTS] [-c]
  -t  image name (default: \$IMAGE or predict:latest)
  -e  engine (default: docker if its daemon answers, else podman)
  -b  base image (default: ${DEFAULT_BASE}, or a Debian stand-in when it cannot be pulled)
  -s  podman only: keep images in a private store under STORE_DIR (see storage.conf there)
  -r  lock file to install (default: requirements.txt; requirements-onnx.txt adds ONNX Runtime)
  -c  the compiled image (Dockerfile target "compiled"): serves a model built with --runtime onnx
      through ONNX Runtime, without scikit-learn or SciPy (requirements-compiled.txt; -r is ignored)
Build args SOURCE_URL, VCS_REF and VERSION default to the git remote, HEAD and git describe.
A non-empty ${CA_BUNDLE} (env CA_BUNDLE) is passed as build secret "cacert" for pip.
EOF
}

err() {
  echo "[$(date +'%Y-%m-%dT%H:%M:%S%z')] ${0##*/}: $*" >&2
}

pick_engine() {
  if command -v docker > /dev/null && docker info > /dev/null 2>&1; then
    echo docker
  elif command -v podman > /dev/null; then
    echo podman
  else
    err "neither a docker daemon nor podman is available"
    return 1
  fi
}

# Podman reads its settings from files named by env vars; keep any the caller already chose.
use_podman_config() {
  local store="$1"
  export CONTAINERS_CONF="${CONTAINERS_CONF:-${CONTAINER_DIR}/containers.conf}"
  [[ -n "${store}" ]] || return 0
  mkdir -p "${store}"
  store="$(cd "${store}" && pwd)"
  sed "s|@STORE@|${store}|g" "${CONTAINER_DIR}/storage.conf" > "${store}/storage.conf"
  export CONTAINERS_STORAGE_CONF="${store}/storage.conf"
}

# Prints the base image to build on: the one asked for if present or pullable, else the stand-in
# (refreshed by base.sh when its recipe changed; podman's short names may resolve to it locally).
resolve_base() {
  local engine="$1" base="$2" stand_in
  stand_in="$("${engine}" image inspect --format '{{ index .Labels "stand-in.cache-key" }}' \
    "${base}" 2> /dev/null)" || stand_in="absent"
  if [[ -z "${stand_in}" || "${stand_in}" == "<no value>" ]] \
    || { [[ "${stand_in}" == "absent" ]] \
      && timeout 300 "${engine}" pull --quiet "${base}" > /dev/null 2>&1; }; then
    echo "${base}"
  elif [[ "${base}" == "${DEFAULT_BASE}" ]]; then
    err "cannot pull ${base}; building on a stand-in from Debian packages"
    "${CONTAINER_DIR}/base.sh" -e "${engine}"
  else
    err "cannot pull ${base}"
    return 1
  fi
}

# The repository's URL for the source label, without any credentials an https remote may embed.
source_url() {
  git -C "${ROOT}" remote get-url origin 2> /dev/null | sed -E 's|^([a-z+]+://)[^/@]*@|\1|' || true
}

main() {
  local image="${IMAGE:-predict:latest}" engine="" base="${DEFAULT_BASE}" store="" opt
  local requirements="requirements.txt" target="runtime"
  while getopts "t:e:b:s:r:ch" opt; do
    case "${opt}" in
      t) image="${OPTARG}" ;;
      e) engine="${OPTARG}" ;;
      b) base="${OPTARG}" ;;
      s) store="${OPTARG}" ;;
      r) requirements="${OPTARG}" ;;
      c) target="compiled" ;;
      h) usage; return 0 ;;
      *) usage >&2; return 2 ;;
    esac
  done
  [[ -n "${engine}" ]] || engine="$(pick_engine)"
  [[ "${engine}" == podman ]] && use_podman_config "${store}"
  base="$(resolve_base "${engine}" "${base}")"

  local args=(build --tag "${image}" --file "${ROOT}/Dockerfile" --target "${target}"
    --build-arg "BASE_IMAGE=${base}"
    --build-arg "REQUIREMENTS=${requirements}"
    --build-arg "SOURCE_URL=${SOURCE_URL:-$(source_url)}"
    --build-arg "VCS_REF=${VCS_REF:-$(git -C "${ROOT}" rev-parse HEAD 2> /dev/null || true)}"
    --build-arg "VERSION=${VERSION:-$(git -C "${ROOT}" describe --tags --always --dirty 2> /dev/null || true)}"
    --build-arg "CREATED=$(date -u +'%Y-%m-%dT%H:%M:%SZ')")
  [[ -s "${CA_BUNDLE}" ]] && args+=(--secret "id=cacert,src=${CA_BUNDLE}")
  err "building ${image} (${target}) with ${engine} on ${base}"
  # BuildKit for docker: the classic builder knows no build secrets.
  DOCKER_BUILDKIT=1 "${engine}" "${args[@]}" "${ROOT}" >&2
  echo "${image}"
}

main "$@"

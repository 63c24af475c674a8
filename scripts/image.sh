#!/usr/bin/env bash
#
# Builds the container image (Dockerfile at the repo root) with docker when its daemon answers,
# else with podman. With podman it applies the engine settings our build hosts need
# (scripts/container/containers.conf) and, where the base image cannot be pulled, builds on a
# stand-in made from Debian packages (scripts/container/base.sh). With -m DIR it serves the model
# packaged in DIR instead of the default one. Prints the image name on stdout.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly CONTAINER_DIR="${ROOT}/scripts/container"
readonly DEFAULT_BASE="python:3.11-slim"
readonly CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
# Where -m DIR is staged: the one place the build context admits a model (.dockerignore).
readonly MODEL_STAGE=".cache/image-model"
readonly MODEL_FILES=(manifest.json model.skops examples.jsonl)

usage() {
  cat <<EOF
Usage: ${0##*/} [-t IMAGE] [-e docker|podman] [-b BASE_IMAGE] [-s STORE_DIR] [-r REQUIREMENTS] [-m MODEL_DIR] [-c]
  -t  image name (default: \$IMAGE or predict:latest)
  -e  engine (default: docker if its daemon answers, else podman)
  -b  base image (default: ${DEFAULT_BASE}, or a Debian stand-in when it cannot be pulled)
  -s  podman only: keep images in a private store under STORE_DIR (see storage.conf there)
  -r  lock file to install (default: requirements.txt; requirements-onnx.txt adds ONNX Runtime)
  -m  serve the model in MODEL_DIR, written by \`python -m model package SOURCE --out MODEL_DIR\`,
      instead of the default one: verified the full way and baked at build time (not with -c)
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

# Copies the packaged model's files to ${MODEL_STAGE}, replacing what an earlier build left there.
stage_model() {
  local dir="$1" stage="${ROOT}/${MODEL_STAGE}" name
  if [[ -e "${dir}/model.onnx" ]]; then
    err "${dir} was packaged with --runtime onnx; the default image serves it through scikit-learn: package it without"
    return 1
  fi
  for name in "${MODEL_FILES[@]}"; do
    if [[ ! -f "${dir}/${name}" ]]; then
      err "${dir} has no ${name}; make the directory with: python -m model package SOURCE --out ${dir}"
      return 1
    fi
  done
  rm -rf "${stage}"
  mkdir -p "${stage}"
  for name in "${MODEL_FILES[@]}"; do
    cp "${dir}/${name}" "${stage}/${name}"
  done
}

main() {
  local image="${IMAGE:-predict:latest}" engine="" base="${DEFAULT_BASE}" store="" opt
  local requirements="requirements.txt" target="runtime" model_dir=""
  while getopts "t:e:b:s:r:m:ch" opt; do
    case "${opt}" in
      t) image="${OPTARG}" ;;
      e) engine="${OPTARG}" ;;
      b) base="${OPTARG}" ;;
      s) store="${OPTARG}" ;;
      r) requirements="${OPTARG}" ;;
      m) model_dir="${OPTARG}" ;;
      c) target="compiled" ;;
      h) usage; return 0 ;;
      *) usage >&2; return 2 ;;
    esac
  done
  if [[ -n "${model_dir}" && "${target}" == compiled ]]; then
    err "-m is for the default image; the compiled image trains and converts its own model"
    return 2
  fi
  if [[ -n "${model_dir}" ]]; then
    # shellcheck disable=SC2064  # expand now: the path is fixed
    trap "rm -rf '${ROOT:?}/${MODEL_STAGE}'" EXIT
    stage_model "${model_dir}"
  fi
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
  [[ -z "${model_dir}" ]] || args+=(--build-arg "MODEL_DIR=${MODEL_STAGE}")
  err "building ${image} (${target}${model_dir:+, model from ${model_dir}}) with ${engine} on ${base}"
  # BuildKit for docker: the classic builder knows no build secrets.
  DOCKER_BUILDKIT=1 "${engine}" "${args[@]}" "${ROOT}" >&2
  echo "${image}"
}

main "$@"

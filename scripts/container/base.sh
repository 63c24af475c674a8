#!/usr/bin/env bash
#
# Builds a stand-in for the python:3.11-slim base image from Debian bookworm packages, for hosts
# that cannot pull from a registry. Debian 12 ships Python 3.11 too, so wheels built for the real
# base install unchanged. The root filesystem is cached as a tarball keyed by this script and the
# mirror, so a fresh machine builds it once (about two minutes) and later runs only import it.
#
# It holds what the real image holds, so that images built on it weigh what they will on the real
# base (about 125 MB either way): the real one is debian:bookworm-slim plus ca-certificates, netbase
# and tzdata, CPython 3.11 built under /usr/local with the libraries its modules link (OpenSSL,
# SQLite, bz2, lzma, ffi, gdbm, readline, ncurses, uuid, Berkeley DB), its standard library without
# tests or .pyc files (lib2to3, distutils and ensurepip included), and pip, setuptools and wheel.
# Here Debian's python3.11 stands in for the interpreter, under /usr/bin. Left out: the C headers,
# and idlelib/tkinter, which Debian packages only with Tk and X11 (the real image has their Python
# files, about 2 MB, but not Tk).

set -euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
readonly SELF
readonly SOURCES="/etc/apt/sources.list.d/debian.sources"
readonly CACHE_DIR="${XDG_CACHE_HOME:-${HOME}/.cache}/predict-image"
readonly KEY_LABEL="stand-in.cache-key"

usage() {
  cat <<EOF
Usage: ${0##*/} [-e ENGINE] [-t TAG]
Import a stand-in python:3.11-slim image into ENGINE's store (podman or docker;
default podman) as TAG (default localhost/python:3.11-slim); print TAG.
Env: MIRROR overrides the Debian mirror read from ${SOURCES}.
EOF
}

err() {
  echo "[$(date +'%Y-%m-%dT%H:%M:%S%z')] ${0##*/}: $*" >&2
}

# Prints the mirror apt already uses for bookworm (the stanza whose Suites include it).
mirror() {
  local line uris="" suites=""
  if [[ -n "${MIRROR:-}" ]]; then
    echo "${MIRROR}"
    return
  fi
  while IFS= read -r line || [[ -n "${line}" ]]; do
    case "${line}" in
      URIs:*) uris="${line#URIs:}" ;;
      Suites:*) suites=" ${line#Suites:} " ;;
      "")
        [[ "${suites}" == *" bookworm "* ]] && break
        uris=""
        suites=""
        ;;
    esac
  done < "${SOURCES}"
  if [[ "${suites}" != *" bookworm "* ]]; then
    err "no bookworm stanza in ${SOURCES}; set MIRROR"
    return 1
  fi
  read -r uris _ <<< "${uris}"
  echo "${uris}"
}

# Writes the trimmed root filesystem of the stand-in to $1 as a tarball.
build_rootfs() {
  local out="$1" rootfs archive
  archive="$(mirror)"
  rootfs="$(mktemp -d)"
  # shellcheck disable=SC2064  # expand now: rootfs is local and gone when the trap fires
  trap "rm -rf '${rootfs}'" EXIT
  err "debootstrap bookworm from ${archive} (about two minutes)"
  debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python3-distutils,python3-lib2to3,ca-certificates,netbase,tzdata \
    bookworm "${rootfs}" "${archive}" > "${rootfs}.log" 2>&1 \
    || { cat "${rootfs}.log" >&2; rm -f "${rootfs}.log"; return 1; }
  rm -f "${rootfs}.log"
  # The official image keeps no apt lists, docs or logs, and ships its standard library without
  # .pyc files; neither does this one, so images built on it weigh what they will on the real base.
  rm -rf "${rootfs}"/var/lib/apt/lists/* "${rootfs}"/var/cache/apt/* "${rootfs}"/var/log/* \
    "${rootfs}"/usr/share/{doc,man,info,locale}/*
  find "${rootfs}"/usr/lib/python3* -depth -name __pycache__ -type d -exec rm -rf {} +
  # The official image answers to `python` as well as `python3`.
  ln -s /usr/bin/python3 "${rootfs}/usr/local/bin/python"
  tar --numeric-owner -C "${rootfs}" -cf "${out}.partial" .
  mv "${out}.partial" "${out}"
  rm -rf "${rootfs}"
}

main() {
  local engine="podman" tag="localhost/python:3.11-slim" opt key tarball
  while getopts "e:t:h" opt; do
    case "${opt}" in
      e) engine="${OPTARG}" ;;
      t) tag="${OPTARG}" ;;
      h) usage; return 0 ;;
      *) usage >&2; return 2 ;;
    esac
  done
  key="$({ cat "${SELF}"; mirror; } | sha256sum | cut -c1-16)"
  if [[ "$("${engine}" image inspect --format "{{ index .Labels \"${KEY_LABEL}\" }}" \
    "${tag}" 2> /dev/null)" == "${key}" ]]; then
    echo "${tag}"
    return
  fi
  tarball="${CACHE_DIR}/base-${key}.tar"
  mkdir -p "${CACHE_DIR}"
  if [[ ! -s "${tarball}" ]]; then
    build_rootfs "${tarball}"
  fi
  # Other recipes' root filesystems (other branches use them too) go once unused for a week.
  touch "${tarball}"
  find "${CACHE_DIR}" -maxdepth 1 -name 'base-*.tar' ! -name "${tarball##*/}" -mtime +7 -delete
  "${engine}" import --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' \
    --change "LABEL ${KEY_LABEL}=${key}" "${tarball}" "${tag}" > /dev/null
  echo "${tag}"
}

main "$@"

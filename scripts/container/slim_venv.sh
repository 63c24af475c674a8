#!/usr/bin/env bash
#
# Removes from a virtual environment what a server never runs, as an image build step: the
# libraries' test suites (Python and compiled), Cython/C sources, headers, type stubs, static
# libraries, the installer itself, ONNX Runtime's C API library and model tools, and the symbol
# tables of extension modules; and stores the shared libraries NumPy and SciPy both vendor once.

set -euo pipefail

usage() {
  echo "Usage: ${0##*/} VENV" >&2
}

err() {
  echo "[$(date +'%Y-%m-%dT%H:%M:%S%z')] ${0##*/}: $*" >&2
}

remove_unused_files() {
  local venv="$1"
  "${venv}/bin/python" -m pip uninstall --yes --quiet pip setuptools wheel
  find "${venv}" -depth \( \
    -type d \( -name tests -o -name test -o -name __pycache__ -o -name include \) \
    -o -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.pyi' \
      -o -name '*.c' -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' -o -name '*.tp' \
      -o -name '*.a' -o -name '*.proto' -o -name conftest.py \
      -o -name '_*_tests.*.so' -o -name '_test_*.so' -o -name '_ctest.*.so' \
      -o -name '_cytest.*.so' -o -name '_simd.*.so' \) \
    \) -exec rm -rf {} +
}

# ONNX Runtime's wheel carries its C API library (~35 MB) beside the Python binding, which is
# self-contained (it links no libonnxruntime) and is all Python code loads; and tools for
# optimizing, quantizing and converting models (~5 MB), which `import onnxruntime` never imports.
remove_onnxruntime_extras() {
  local ort
  for ort in "$1"/lib/python3*/site-packages/onnxruntime; do
    [[ -d "${ort}" ]] || continue
    rm -rf "${ort}"/capi/libonnxruntime.so.* "${ort}"/{transformers,quantization,tools,datasets,backend}
  done
}

# Symbol tables are for debuggers; the dynamic symbols the loader needs stay. The vendored
# *.libs are left alone: auditwheel rewrote them with patchelf, and strip breaks such files
# ("ELF load command address/offset not page-aligned").
strip_extension_modules() {
  local venv="$1"
  find "${venv}" -name '*.so*' -type f -not -path '*.libs/*' \
    -exec strip --strip-unneeded {} +
}

# NumPy and SciPy vendor byte-identical copies of libgfortran and libquadmath (auditwheel names
# them by content hash): keep the first, link the others to it.
link_duplicate_libs() {
  local site lib name first
  local -A seen=()
  for site in "$1"/lib/python3*/site-packages; do
    for lib in "${site}"/*.libs/*; do
      [[ -f "${lib}" && ! -L "${lib}" ]] || continue
      name="${lib##*/}"
      first="${seen[${name}]:-}"
      if [[ -n "${first}" ]] && cmp -s "${first}" "${lib}"; then
        ln -sf "../${first#"${site}"/}" "${lib}"
      else
        seen[${name}]="${lib}"
      fi
    done
  done
}

main() {
  if [[ $# -ne 1 || ! -x "$1/bin/python" ]]; then
    usage
    return 2
  fi
  local before
  before="$(du -sm "$1" | cut -f1)"
  remove_unused_files "$1"
  remove_onnxruntime_extras "$1"
  strip_extension_modules "$1"
  link_duplicate_libs "$1"
  err "$1: ${before} MB -> $(du -sm "$1" | cut -f1) MB"
}

main "$@"

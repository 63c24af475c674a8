# The prediction function as the container Cloud Run runs. Build with `make image`
# (scripts/image.sh), or directly:
#   docker build --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt -t predict .
# The secret is optional: it is only needed behind a TLS-intercepting proxy.
# `--build-arg MODEL_DIR=.cache/image-model` serves a packaged model instead of the default one
# (`make image MODEL_DIR=DIR` stages DIR there; see the build stage).
# `--target compiled` builds the image for models compiled with `--runtime onnx` instead: no
# scikit-learn, SciPy, skops or pandas in it, and FROM scratch: the interpreter and the libraries it
# links, without a shell or package manager (`scripts/image.sh -c`, `make image-compiled`).
#
# Syntax kept to what both Docker BuildKit and buildah 1.28 (Debian 12) accept: no COPY --link,
# no heredoc RUN.

# Tests substitute a stand-in built from Debian packages where no registry can be reached.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build-base

# The same path in every stage: a venv's scripts and pyvenv.cfg hold absolute paths.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# binutils provides strip for slim_venv.sh, in the build stages only, from whatever Debian release
# the base has.
# hadolint ignore=DL3008
RUN python3 -m venv "${VIRTUAL_ENV}" \
    && apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends binutils > /dev/null \
    && rm -rf /var/lib/apt/lists/*
# What the server never runs (tests, sources, headers, stubs, pip, symbol tables; see the script),
# and the step that byte-compiles what it does run.
COPY scripts/container/slim_venv.sh scripts/container/warm_bytecode.py scripts/container/runtime_root.py /tmp/


FROM build-base AS build

# Exact pins with hashes, wheels only: the slim base has no compiler, and a missing wheel should
# fail the build rather than quietly compile an sdist. REQUIREMENTS picks another lock file of the
# repo (requirements*.txt) for a variant image.
ARG REQUIREMENTS=requirements.txt
COPY ${REQUIREMENTS} /tmp/requirements.txt
RUN --mount=type=secret,id=cacert,target=/run/secrets/cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
    && pip install --no-cache-dir --no-compile --require-hashes --only-binary=:all: \
        -r /tmp/requirements.txt \
    && /tmp/slim_venv.sh "${VIRTUAL_ENV}"

WORKDIR /app
COPY main.py ./
COPY service/ service/
COPY inference/ inference/
COPY batch/ batch/
COPY model/ model/
# MODEL_DIR: a directory `python -m model package` wrote (manifest.json, model.skops, examples.jsonl),
# served instead of the default model. It must be in the build context, whose allow-list admits
# those three files in .cache/image-model alone (scripts/image.sh -m DIR copies them there). COPY
# needs a source either way: without MODEL_DIR it copies main.py, which nothing reads.
ARG MODEL_DIR=""
COPY ${MODEL_DIR:-main.py} /tmp/packaged-model/
# Bake the model in, so an instance serves without reaching any storage: the packaged one, or the
# default one trained here; verified the full way (SHA-256, skops' allow-list, versions) and stored
# in the form the built-in directory loads without skops (`python -m model bake`; model/baked.py
# says why that is safe). The atomic writes leave the files readable by root alone: the server's
# user must read them.
# Then byte-compile, for PYTHONOPTIMIZE=2 as the server runs, so a cold start reads .pyc files
# instead of compiling: all of the app, and of the libraries what one run of the real server
# imports, predicting the model's own examples (compiling all of them would add ~45 MB of unread files).
# And what a model from MODEL_URI imports and the baked built-in one does not: pandas, for a
# DataFrame model, and skops.io, which loads every such model and imports every scikit-learn
# estimator module: compiled, their imports take 0.2 and 0.3 s instead of 0.9 and 0.7 s (README).
# unchecked-hash: the sources in an image never change, so imports skip the freshness check.
RUN if [ -n "${MODEL_DIR}" ]; then \
        mkdir model/artifacts \
        && cp /tmp/packaged-model/manifest.json /tmp/packaged-model/model.skops \
            /tmp/packaged-model/examples.jsonl model/artifacts/; \
    else python -m model train; fi \
    && python -m model bake \
    && chmod -R a+rX model/artifacts \
    && python /tmp/warm_bytecode.py --optimize 2 --import google.cloud.storage --import pandas --import skops.io \
        --stdlib-list "${VIRTUAL_ENV}/stdlib-imports.txt" "${VIRTUAL_ENV}" \
    && python -OO -m compileall -q -f --invalidation-mode unchecked-hash /app


FROM build-base AS compiled-build

# The converter (scikit-learn, skl2onnx, ONNX Runtime) in a venv of its own that never ships; the
# server's venv holds only what serving an ONNX model takes (requirements-compiled.txt).
COPY requirements-convert.txt requirements-compiled.txt /tmp/
RUN --mount=type=secret,id=cacert,target=/run/secrets/cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
    && python3 -m venv /opt/convert \
    && /opt/convert/bin/pip install --no-cache-dir --no-compile --require-hashes --only-binary=:all: \
        -r /tmp/requirements-convert.txt \
    && pip install --no-cache-dir --no-compile --require-hashes --only-binary=:all: \
        -r /tmp/requirements-compiled.txt \
    && /tmp/slim_venv.sh "${VIRTUAL_ENV}"

WORKDIR /app
COPY main.py ./
COPY service/ service/
COPY inference/ inference/
COPY batch/ batch/
COPY model/ model/
# Train, convert, and verify the converted model against scikit-learn on held-out rows (the build
# fails if it differs); then the real server, from the serving venv, must answer with it.
RUN /opt/convert/bin/python -m model train --runtime onnx \
    && chmod -R a+rX model/artifacts \
    && python /tmp/warm_bytecode.py --optimize 2 --import google.cloud.storage \
        --stdlib-list "${VIRTUAL_ENV}/stdlib-imports.txt" "${VIRTUAL_ENV}" \
    && python -OO -m compileall -q -f --invalidation-mode unchecked-hash /app

# The compiled image's whole root file system, gathered from this stage (scripts/container/runtime_root.py):
# the interpreter, its standard library without what a server never runs, the venv, the app, and
# the shared libraries all of them link; with the standard library modules the server imports
# compiled (the base ships none) and the base's other .pyc files left behind. Then the real server
# runs inside that root, as UID 1000, and must answer: the image it becomes has no shell to try it.
RUN find "$(python -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')" -name __pycache__ -prune \
        -exec rm -rf {} + \
    && python -OO -m compileall -q --invalidation-mode unchecked-hash -i "${VIRTUAL_ENV}/stdlib-imports.txt" \
    && python /tmp/runtime_root.py --tree "${VIRTUAL_ENV}" --tree /app --user app:1000 /rootfs \
    && FUNCTION_SOURCE=/app/main.py chroot --userspec=1000:1000 /rootfs \
        python - --check < /tmp/warm_bytecode.py


FROM ${BASE_IMAGE} AS runtime-base

# UID 1000 owns nothing in the image: the app, the venv and the model stay root's, read-only to it.
RUN useradd --uid 1000 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app

# WORKERS=1: Cloud Run gives an instance 1 vCPU, so a second process would only duplicate the model
# in memory and split the micro-batcher's queue; the worker's event loop gives the concurrency
# (Cloud Run's --concurrency=16) that lets requests meet in one batch. No gunicorn worker
# timeout (0): Cloud Run enforces the request timeout itself, and a gunicorn timeout would kill the
# only worker, model and all. Each is functions-framework's own knob, settable at deploy time.
# PYTHONOPTIMIZE=2 (python -OO): docstrings and assert statements are left out of the bytecode.
# The libraries' docstrings alone took 14 MB of every instance's memory; nothing the server runs
# reads them, and the asserts on its path check the libraries' own invariants, not input.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONOPTIMIZE=2 \
    PORT=8080 \
    WORKERS=1 \
    CLOUD_RUN_TIMEOUT_SECONDS=0

WORKDIR /app
EXPOSE 8080

# The server is PID 1 and gets SIGTERM itself, so Cloud Run's shutdown is graceful. It listens on
# PORT (Cloud Run's), or on AIP_HTTP_PORT where Vertex AI sets one (service/server_tuning.py).
CMD ["functions-framework", "--target=predict"]


# For models compiled with `--runtime onnx`: `docker build --target compiled .` Nothing of the base
# but what runtime_root.py gathered: no shell, so every command is exec-form.
FROM scratch AS compiled

COPY --from=compiled-build /rootfs /
# runtime-base's settings (see there; tests/test_image.py checks they agree), and LANG=C.UTF-8 as
# the base sets it.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONOPTIMIZE=2 \
    PORT=8080 \
    WORKERS=1 \
    CLOUD_RUN_TIMEOUT_SECONDS=0
WORKDIR /app
EXPOSE 8080
USER 1000:1000
CMD ["functions-framework", "--target=predict"]

ARG SOURCE_URL=""
ARG VCS_REF=""
ARG VERSION=""
ARG CREATED=""
LABEL org.opencontainers.image.title="predict-compiled" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${CREATED}"


# The default image (the last stage, so `docker build .` builds it): models served by scikit-learn.
FROM runtime-base AS runtime

COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
RUN python3 -m compileall -q -i /opt/venv/stdlib-imports.txt
USER 1000:1000

# Last, so a new commit changes only this layer.
ARG SOURCE_URL=""
ARG VCS_REF=""
ARG VERSION=""
ARG CREATED=""
LABEL org.opencontainers.image.title="predict" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${CREATED}"

# Two commands matter: `make run` serves the default model on $PORT (default 8080), and `make test`
# runs every test. Both set up what they need first (the Debian packages, through scripts/setup.sh;
# the virtual environment and pinned dependencies; the default model).
SHELL := /bin/bash
.DEFAULT_GOAL := help
# Prerequisites are made in the order written: the system set-up comes before anything it enables.
.NOTPARALLEL:

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080
PYTEST_ARGS ?=
IMAGE ?= predict:latest
# A directory `python -m model package` wrote, served by `make image` instead of the default model.
MODEL_DIR ?=
COMPILED_IMAGE ?= predict-compiled:latest

.PHONY: help setup setup-run venv dev model run test lint lock image image-compiled bench fuzz soak clean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup-run:
	@PYTHON=$(PYTHON) VENV=$(VENV) scripts/setup.sh run

setup: ## Install the Debian packages the tests need (as root or with sudo), or name them.
	@PYTHON=$(PYTHON) VENV=$(VENV) scripts/setup.sh test

# A venv left without pip by a failed attempt would pass for a made one: remove it.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }

$(VENV)/.prod: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-onnx.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-onnx.txt -r requirements-dev.txt
	touch $(VENV)/.prod $@

venv: $(VENV)/.prod ## Create .venv with the pinned production dependencies.

dev: $(VENV)/.dev ## Add the pinned test and dev tools.

model/artifacts/manifest.json: model/training.py model/manifest.py model/schema.py model/examples.py model/baked.py | $(VENV)/.prod
	$(BIN)/python -m model train
	$(BIN)/python -m model bake

model: model/artifacts/manifest.json ## Train the default model (deterministic) into model/artifacts/.

run: setup-run venv model ## Serve the default model on $PORT (default 8080), set-up included.
	PORT=$(PORT) $(BIN)/functions-framework --target=predict

test: setup dev model ## Run every test, set-up included.
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: dev ## Static checks: ruff, shellcheck, hadolint, actionlint.
	$(BIN)/ruff check .
	git ls-files '*.sh' | xargs --no-run-if-empty $(BIN)/shellcheck
	$(BIN)/hadolint Dockerfile
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/actionlint

lock: dev ## Re-pin requirements*.txt (with hashes) from requirements*.in.
	$(BIN)/uv pip compile --quiet --native-tls --generate-hashes --python-version 3.11 requirements.in -o requirements.txt
	$(BIN)/uv pip compile --quiet --native-tls --generate-hashes --python-version 3.11 requirements-onnx.in -o requirements-onnx.txt
	$(BIN)/uv pip compile --quiet --native-tls --generate-hashes --python-version 3.11 requirements-compiled.in -o requirements-compiled.txt
	$(BIN)/uv pip compile --quiet --native-tls --generate-hashes --python-version 3.11 requirements-dev.in -o requirements-dev.txt
	$(BIN)/uv pip compile --quiet --native-tls --generate-hashes --python-version 3.11 requirements-convert.in -o requirements-convert.txt

image: ## Build the container image as $(IMAGE) (docker if its daemon answers, else podman); MODEL_DIR=DIR serves a packaged model.
	IMAGE=$(IMAGE) scripts/image.sh $(if $(MODEL_DIR),-m "$(MODEL_DIR)")

image-compiled: ## Build the image for a model compiled with --runtime onnx (no scikit-learn) as $(COMPILED_IMAGE).
	IMAGE=$(COMPILED_IMAGE) scripts/image.sh -c

bench: dev ## Benchmark against FastAPI, MLServer and the in-process floor (about 25 minutes).
	$(BIN)/python -m bench

fuzz: dev model ## Long fuzz of a real server from the OpenAPI document and mangled bodies (~4 min).
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-2500} $(BIN)/python -m pytest -q -s tests/test_fuzz.py

soak: dev model ## A 2-minute soak at concurrency 32 against the real server (SOAK_SECONDS).
	SOAK_SECONDS=$${SOAK_SECONDS:-120} $(BIN)/python -m pytest -q -s tests/test_load.py -k soak

clean: ## Remove the virtual environment, the built model and caches.
	rm -rf $(VENV) model/artifacts .pytest_cache .ruff_cache .hypothesis

# The two commands: `make demo` (the main job on bundled data) and `make test` (the whole suite).
# Each creates .venv when missing and installs what it needs; a stamp file named after the hash of
# pyproject.toml re-installs when the dependencies change.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Extras the tests and the demo need (torch is pinned to 2.13.0 in pyproject.toml).
EXTRAS ?= test,ml,torch,privacy,he,postgres,ray,signing,bom,data,scan,onnx,serve,fairness,explain,healthcare,ecommerce,signing-compat
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha256sum | cut -c1-16)
PYTEST_ARGS ?=

.PHONY: demo test coverage lint install clean

$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing mlsecops[$(EXTRAS)] into $(VENV) (first run takes a few minutes)"
	@set -o pipefail; $(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]" 2>&1 | { grep -v "is ignored" || true; }
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mlsecops demo --case all --dir out/demo

test: $(STAMP)
	$(BIN)/python -m pytest -m "not benchmark" $(PYTEST_ARGS)

coverage: $(STAMP)
	$(BIN)/python -m pytest -m "not benchmark" -q --cov --cov-report=term $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache

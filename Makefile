# InstructNER serving. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-stamp

.PHONY: help setup test unit integration lint

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# CPU torch from local disk first: an unpinned torch would pull a multi-GB CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[train,serve,dev]"
	touch $@

setup: $(STAMP) ## create the virtualenv and install pinned dependencies

lint: setup ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check instructner tests
	$(VENV)/bin/mypy instructner

unit: setup ## unit tests (no server, no network)
	$(PY) -m pytest tests/unit -q

test: setup lint ## everything CI runs: lint, unit and integration tests
	$(PY) -m pytest tests -q -ra

# Drug-lot provenance service. `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	# torch first, pinned: a looser range would pull a multi-GB CUDA build (docs/operations.md).
	$(PYTHON) -m pip install -q "torch==2.13.0"
	$(PYTHON) -m pip install -q -c requirements.lock -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP) ## Create .venv, install the pinned dependencies, compile the simulator
	@# mypyc build of the simulator (about 2 min; a no-op while it matches the sources; without a C compiler the
	@# Python sources are used, just slower)
	$(PYTHON) -m simulator build --if-possible

compile: $(STAMP) ## Compile the simulator with mypyc (simulator/native.py), even if a matching build exists
	rm -rf simulator/_native
	$(PYTHON) -m simulator build

migrate: install ## Apply database migrations
	$(PYTHON) manage.py migrate --noinput

demo: install ## The whole product on the embedded default: simulate, train, score, serve on :8000
	$(PYTHON) manage.py migrate --noinput
	$(PYTHON) manage.py demo
	@if [ -z "$$DEMO_NO_SERVE" ]; then $(PYTHON) manage.py runserver 127.0.0.1:8000; fi

test: install ## Run the test suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy config provenance anomaly simulator

format: install ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install ## Benchmarks that print figures (need DATABASE_URL for PostgreSQL)
	$(PYTHON) bench/ingest.py

lock: ## Refresh requirements.lock from the current venv
	$(BIN)/pip freeze --exclude-editable | grep -v '^torch==' > requirements.lock

clean: ## Remove the venv and the embedded database
	rm -rf $(VENV) data/db.sqlite3* simulator/_native

.PHONY: help install compile migrate demo test lint format bench lock clean

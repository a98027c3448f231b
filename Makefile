# secondread: the two commands first.
#   make up     install what is missing, start the stack and the five services, print where they are
#               (SECONDREAD_REPLICAS=N make up: N replicas of each service, remembered)
#   make test   lint, type-check, unit, component and end-to-end tests (starts the stack if needed)
#   make demo   a guided tour: one synthetic case from upload to a verifiable signature

SHELL := /bin/bash
PY := .venv/bin/python
UV := $${SECONDREAD_CACHE_DIR:-$$HOME/.cache/secondread}/uv-venv/bin/uv

.PHONY: up down status install test lint typecheck unit e2e bench chaos lock asyncapi k8s demo help

help:
	@echo "make up | down | status | demo | test | lint | typecheck | unit | e2e | bench | chaos | lock | asyncapi | k8s"

install:
	@bash deploy/local/install.sh

up: install
	@$(PY) -m secondread_cli.main up $(if $(SECONDREAD_REPLICAS),--replicas $(SECONDREAD_REPLICAS))

down:
	@if [ -x $(PY) ]; then $(PY) -m secondread_cli.main down; else echo "nothing installed yet"; fi

status:
	@$(PY) -m secondread_cli.main status

# The guided tour (starts the stack if needed); see docs/reporting.md.
demo: install
	@$(PY) -m secondread_cli.demo

lint: install
	$(PY) -m ruff check shared services cli tests bench docs deploy
	$(PY) -m ruff format --check shared services cli tests bench docs deploy

typecheck: install
	$(PY) -m mypy shared/src cli/src services/ingest/src services/deidentify/src \
		services/routing/src services/reporting/src services/notify/src

unit: install
	$(PY) -m pytest -m "not e2e and not integration"

e2e: install
	$(PY) -m pytest -m "e2e or integration"

# The whole suite: lint and types first (fast failures), then every test tier in one run.
test: lint typecheck
	$(PY) -m pytest

# Two replicas of every service, CHAOS_CASES (50) cases by upload and C-STORE, the fault
# schedule of docs/reliability.md; the last line is the verdict (non-zero exit on a loss).
chaos: install
	@$(PY) -m secondread_cli.main up >/dev/null
	@$(PY) -m tests.chaos

bench: install
	@for b in bench/*/run.sh; do [ -e "$$b" ] && bash "$$b"; done; true

# Regenerate requirements.lock after changing a pyproject.toml or requirements.in.
lock:
	$(UV) pip compile -q requirements.in --generate-hashes --python-version 3.11 -o requirements.lock
	$(UV) pip sync -q --compile-bytecode --python $(PY) requirements.lock

# Regenerate docs/asyncapi.json from the services' brokers (tests fail when it is stale).
asyncapi:
	$(PY) docs/generate_asyncapi.py

# Regenerate deploy/k8s/secondread.yaml (tests fail when it is stale).
k8s:
	$(PY) deploy/k8s/generate.py

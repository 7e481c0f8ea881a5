# Two commands: `make run` serves the app on SQLite, `make test` runs the suite. Both set up first.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# The newest Python 3.11+ on the PATH.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: help run test lint format migrate seed clean vendor

help:
	@echo "make run     set up and serve Issues at http://$(HOST):$(PORT) (SQLite, no other service)"
	@echo "make test    set up and run the whole test suite"
	@echo "make lint    ruff check, ruff format --check, and the import layers (lint-imports)"
	@echo "make format  ruff format and ruff check --fix"
	@echo "make migrate apply the database migrations"
	@echo "make clean   remove the virtualenv and caches (keeps instance/, your data)"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Issues needs Python 3.11 or newer on the PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when the project's dependencies change.
$(VENV)/.installed-app: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed-app

# Front-end libraries from npm (pinned in package-lock.json) into app/static/vendor. Without
# npm the pages still work, with full-page forms instead of in-place updates.
VENDOR := app/static/vendor
$(VENDOR)/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --ignore-scripts --loglevel=error && \
		rm -rf $(VENDOR) && mkdir -p $(VENDOR) && \
		cp node_modules/htmx.org/dist/htmx.min.js node_modules/sortablejs/Sortable.min.js \
		   node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css \
		   $(VENDOR)/ && \
		cp node_modules/@simplewebauthn/browser/dist/bundle/index.umd.min.js \
		   $(VENDOR)/simplewebauthn-browser.umd.min.js && touch $@; \
	else \
		echo "npm not found: pages will work without htmx (install Node.js for in-place edits)"; \
	fi

vendor: $(VENDOR)/.installed

migrate: $(VENDOR)/.installed $(VENV)/.installed-app
	$(BIN)/alembic upgrade head

run: migrate
	@echo ""
	@echo "  Issues is running at http://$(HOST):$(PORT)  (Ctrl-C stops it)"
	@echo ""
	exec $(BIN)/hypercorn "app:create_app()" --bind $(HOST):$(PORT) --graceful-timeout 1 \
		--access-logfile -

test: $(VENDOR)/.installed $(VENV)/.installed-test
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info node_modules $(VENDOR)

# The README's commands. Each creates .venv/ at the repo root when it is missing.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.PHONY: venv test demo lint lock up down lab bench-ingest bench-pipeline bench-analytics clean-data

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python --prerelease=if-necessary-or-explicit \
		-r requirements-dev.txt -c requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

test: venv
	$(BIN)/python -m pytest

demo: venv
	$(BIN)/deact demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Re-resolve the transitive pins after changing requirements*.txt.
lock:
	$(BIN)/uv pip compile requirements-dev.txt --python-version 3.11 \
		--prerelease=if-necessary-or-explicit --no-header -o requirements.lock

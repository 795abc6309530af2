# The README's commands. Each creates .venv/ at the repo root when it is missing.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.PHONY: venv .venv-bq test demo lint lock up up-emulators down lab bench-ingest bench-pipeline bench-analytics bench-vs-go bench-dashboard bench-notify

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python --prerelease=if-necessary-or-explicit \
		-r requirements-dev.txt -c requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

# The BigQuery adapter's tests run against local-bigquery in its own Python 3.13 venv (see
# requirements-bq.txt). `make test` builds it first; should that fail on a machine, the tests that
# need it skip and say why, the rest still run.
BQ_VENV := .venv-bq
BQ_STAMP := $(BQ_VENV)/.installed

.venv-bq: $(BQ_STAMP)

$(BQ_STAMP): requirements-bq.lock tests/deactivation/build_bq_venv.sh | $(STAMP)
	bash tests/deactivation/build_bq_venv.sh

test: venv
	@$(MAKE) --no-print-directory .venv-bq || echo "warning: .venv-bq not built; the BigQuery emulator tests will skip"
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

demo: venv
	$(BIN)/deact demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Re-resolve the transitive pins after changing requirements*.txt.
lock:
	$(BIN)/uv pip compile requirements-dev.txt --python-version 3.11 \
		--prerelease=if-necessary-or-explicit --no-header -o requirements.lock

# JupyterLab for notebooks/ on 127.0.0.1, with a kernel named "deactivation" that runs .venv's
# Python (the project installed). The notebooks read the same settings as every `deact` command:
# the environment, or .env at the repo root (they start with workbench.use_project_root()).
LAB_PORT ?= 8888
# Jupyter refuses root unless told; dev containers often run as root.
LAB_ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
lab: venv
	$(BIN)/python -m ipykernel install --sys-prefix --name deactivation \
		--display-name "Python (deactivation)" >/dev/null
	$(BIN)/jupyter lab --ip=127.0.0.1 --port=$(LAB_PORT) --no-browser $(LAB_ROOT_FLAG) \
		--ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks

# The local stack in the background, logs under data/logs/, PIDs under data/run/: local MongoDB,
# the collector, a Prefect server (SQLite under data/prefect/) and a process worker; registers
# the deployments of prefect.yaml (`prefect deploy --all`) and prints the URLs.
# `make down` stops exactly the processes `make up` started.
up: venv
	$(BIN)/deact stack up

down:
	$(BIN)/deact stack down

# The production configuration tried locally: the GCS and BigQuery emulators on free ports, the
# bucket and dataset created, the settings to export written to data/run/emulators.env.
up-emulators: venv
	$(BIN)/deact stack up --emulators

# The pipeline against DuckDB read_json on 100k- and 1M-event hours (docs/performance.md);
# other sizes: make bench-pipeline EVENTS=3000000 (about 20 minutes and 12 GB here).
EVENTS ?=
bench-pipeline: venv
	$(BIN)/python bench/pipeline.py $(if $(EVENTS),--events $(EVENTS))

# Analytics on a 10M-row DuckDB warehouse: full rebuild and a one-hour incremental build.
bench-analytics: venv
	$(BIN)/python bench/analytics.py

# The collector under h2load over loopback: req/s, p50/p99, 2xx vs stored (see bench/ingest.py;
# needs `apt-get install nghttp2-client`, or wrk for --no-keepalive).
bench-ingest: venv
	$(BIN)/python bench/ingest.py

# deact serve and the Go reference collector (../shared/bench/go-collector; Debian golang-go) under
# the same h2load run, side by side; prints the ratio.
bench-vs-go: venv
	$(BIN)/python bench/collector_vs_go.py

# The dashboard's list, overview and CSV export against the local MongoDB and DuckDB.
bench-dashboard: venv
	$(BIN)/python bench/dashboard.py

# 100,000 notifications drained through the local SMTP sink.
bench-notify: venv
	$(BIN)/python bench/notify.py --messages 100000

# Two commands matter: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Run history lives inside the project (ignored by git) unless the caller points elsewhere.
export PREFECT_HOME ?= $(CURDIR)/.prefect
# No network here or on CI: don't let Prefect try to send usage telemetry.
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
CONFIG ?= examples/portfolio.yaml

.PHONY: run test check lint install clean

$(BIN)/exec-reports: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or run: make PYTHON=python3 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/exec-reports

run: install
	$(BIN)/exec-reports run --config $(CONFIG)

test: install
	$(BIN)/python -m pytest

check: install
	$(BIN)/exec-reports check --config $(CONFIG)

lint: install
	$(BIN)/ruff check flows sources tests bench

clean:
	rm -rf outbox preview .pytest_cache

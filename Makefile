# Two commands matter: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Run history lives inside the project (ignored by git) unless the caller points elsewhere.
export PREFECT_HOME ?= $(CURDIR)/.prefect
# Prefect's usage telemetry is off in everything the project starts (the CLI does the same itself);
# EXEC_REPORTS_TELEMETRY=on turns it back on. See docs/operations.md, Telemetry.
ifneq ($(EXEC_REPORTS_TELEMETRY),on)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
endif
# MkDocs plugins print a banner about a future MkDocs 2 on every build; the site pins mkdocs<2.
export DISABLE_MKDOCS_2_WARNING ?= true
export NO_MKDOCS_2_WARNING ?= 1
CONFIG ?= examples/portfolio.yaml

.PHONY: run test check lint install clean lambda-package bench server server-stop docs docs-build

$(BIN)/exec-reports: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or run: make PYTHON=python3 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/exec-reports

# make run DELIVERY=ses|smtp sends through that backend for this run (or set EXEC_REPORTS_DELIVERY);
# RESEND=1 sends again what this period already sent. See docs/delivery.md.
DELIVERY ?=
RESEND ?=

run: install
	$(BIN)/exec-reports run --config $(CONFIG)$(if $(DELIVERY), --delivery $(DELIVERY))$(if $(RESEND), --resend)

# The local Prefect server `make run` starts on first use and keeps for later runs (UI and run history).
server: install
	$(BIN)/exec-reports server start

server-stop: install
	$(BIN)/exec-reports server stop

test: install
	$(BIN)/python -m pytest

# Benchmarks print numbers and write bench/results.md; they never assert (see bench/run_bench.py).
# make bench ONLY=first-contact,check runs some of them (into bench/results-partial.md).
ONLY ?=
bench: install
	$(BIN)/python -m bench.run_bench$(if $(ONLY), --only $(ONLY))

# The documentation site: `make docs` serves it at http://127.0.0.1:8000 while you edit docs/;
# `make docs-build` builds it into site/ and fails on any warning (CI runs it).
docs: install
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

docs-build: install
	$(BIN)/mkdocs build --strict --site-dir site

check: install
	$(BIN)/exec-reports check --config $(CONFIG)

lint: install
	$(BIN)/ruff check flows sources tests bench

# The Lambda trigger's zip (deployment mode): the handler's modules + PyJWT/cryptography for Lambda's
# Python 3.11 on x86_64. See docs/operations.md; inline mode is deploy/lambda/Dockerfile.
lambda-package: install
	$(BIN)/python deploy/lambda/build_package.py --output build/exec-reports-trigger.zip --work-dir build/lambda --measure

clean:
	rm -rf outbox preview site .pytest_cache

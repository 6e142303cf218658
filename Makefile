# The README's commands. Every target installs what it needs into .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench bench-pipeline bench-score bench-forecast bench-quality bench-drift install browser clean deploy-tools check-deploy lock

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/riverwatch up --demo

test: install browser deploy-tools
	$(BIN)/python -m pytest

# The browser tests drive Debian's chromium (never a `playwright install` download).
browser:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update && $(SUDO) env \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core; }

# promtool (Debian's prometheus package) and shellcheck for tests/deploy; the other tools that
# check deploy/ (kubernetes-validate, kubectl for kustomize, hadolint, check-jsonschema) are
# dev dependencies in .venv.
deploy-tools:
	@command -v promtool > /dev/null && command -v shellcheck > /dev/null || { $(SUDO) apt-get update \
		&& $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		prometheus shellcheck; }

# Only the checks of deploy/ (README, "Checking deploy/").
check-deploy: install deploy-tools
	$(BIN)/python -m pytest tests/deploy -m 'not slow'

# deploy/requirements.lock: the image's dependencies at the versions of this .venv.
lock: install
	$(BIN)/python deploy/lock.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Every benchmark prints its own table; `make bench` runs them all (about 20 minutes).
bench: bench-pipeline bench-score bench-forecast bench-drift bench-quality

bench-pipeline: install
	$(BIN)/python -m bench.pipeline

bench-score: install
	$(BIN)/python -m bench.score_api

bench-quality: install
	$(BIN)/python -m bench.quality

bench-drift: install
	$(BIN)/python -m bench.drift

bench-forecast: install
	$(BIN)/python -m bench.forecast

clean:
	rm -rf $(VENV) .riverwatch .pytest_cache .mypy_cache .ruff_cache

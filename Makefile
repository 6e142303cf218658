# The README's commands. Every target installs what it needs into .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench bench-pipeline bench-ingest bench-first-score bench-hotpath bench-hotpath-history bench-monitor-cost bench-train-memory bench-retrain-memory bench-score bench-forecast bench-quality bench-quality-system bench-online-learners bench-drift bench-monitor bench-demo-calm install browser clean deploy-tools check-deploy lock
.PHONY: kafka kafka-libs kcat

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/riverwatch up --demo

test: install browser deploy-tools kafka-libs kcat
	RIVERWATCH_TEST_BROKER=kafka $(BIN)/python -m pytest

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

# Apache Kafka (single-node KRaft) runs on Debian's Java 17; Maven fetches its jars once into
# ~/.cache/riverwatch (never into the repository). `make kafka` runs one until Ctrl-C.
kafka-libs: install
	@command -v java >/dev/null && command -v mvn >/dev/null || { $(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		openjdk-17-jre-headless maven; }
	$(BIN)/python -m riverwatch.shell.kafka_broker fetch

kafka: kafka-libs
	$(BIN)/python -m riverwatch.shell.kafka_broker run

# Debian's kcat (librdkafka's CLI), for the test that pokes Apache Kafka as users do.
kcat:
	@test -x /usr/bin/kcat || { $(SUDO) apt-get update && $(SUDO) env \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends kcat; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Every benchmark prints its own table; `make bench` runs them all (about an hour).
bench: bench-pipeline bench-ingest bench-first-score bench-hotpath bench-monitor-cost bench-train-memory bench-retrain-memory bench-score bench-forecast bench-drift bench-quality bench-monitor

bench-pipeline: install
	$(BIN)/python -m bench.pipeline

bench-hotpath: install
	$(BIN)/python -m bench.hotpath

# The monitor's CPU per score in process (bench/monitor_cost.py).
bench-monitor-cost: install
	$(BIN)/python -m bench.monitor_cost

# A retrain's memory in process: the offline read and the fit (bench/train_memory.py).
bench-train-memory: install
	OMP_NUM_THREADS=1 $(BIN)/python -m bench.train_memory

# A retrain through a running helper: its RSS and its fit child's (bench/retrain_memory.py).
bench-retrain-memory: install
	OMP_NUM_THREADS=1 $(BIN)/python -m bench.retrain_memory

# The hot path's history case (and live traffic) of git ref RW_HOT_BASE (main) and of this tree,
# alternately in one run.
bench-hotpath-history: install
	RW_HOT_PARTS=$${RW_HOT_PARTS:-live,history} $(BIN)/python -m bench.hotpath --compare $${RW_HOT_BASE:-main}

bench-score: install
	$(BIN)/python -m bench.score_api

# API ingest rate with batched requests, against a plain producer's rate (issue 15).
bench-ingest: install
	$(BIN)/python -m bench.ingest

# Seconds from `riverwatch up`'s banner to the score of a transaction posted right then.
bench-first-score: install
	$(BIN)/python -m bench.first_score

# Many seeds through the stream's model code (bench/quality_seeds.py); one seed through the
# running system (bench/quality.py).
bench-quality: install
	$(BIN)/python -m bench.quality_seeds

bench-quality-system: install
	$(BIN)/python -m bench.quality

# Online learners (logistic regression, River's trees, forest, boosting) on the replayed
# streams: quality and CPU per learn/predict (issue 17; bench/online_learners.py).
bench-online-learners: install
	RW_Q_WORLD=$${RW_Q_WORLD:-handbook} $(BIN)/python -m bench.online_learners

bench-drift: install
	$(BIN)/python -m bench.drift

bench-monitor: install
	$(BIN)/python -m bench.monitor

# The demo's calm days through the running system: monitor alerts before its drift episode and
# each score's PSI against the reference week (bench/demo_calm.py; ~4 minutes a run).
bench-demo-calm: install kafka-libs
	$(BIN)/python -m bench.demo_calm --runs $${RW_DEMO_RUNS:-3}

bench-forecast: install
	$(BIN)/python -m bench.forecast

clean:
	rm -rf $(VENV) .riverwatch .pytest_cache .mypy_cache .ruff_cache

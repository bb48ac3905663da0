# The two commands the README starts with, and the pieces they are made of.
PYTHON ?= python3
PIP := $(PYTHON) -m pip install -q --disable-pip-version-check

.PHONY: demo test install install-test services stop-services lint unit integration bench

demo: install            ## set up and run the sample set through the embedded pipeline
	$(PYTHON) -m pipeline.cli demo

test: install-test services lint   ## set up, start Kafka + PostgreSQL, run every test
	$(PYTHON) -m pytest

install:
	$(PIP) -e .

install-test:
	$(PIP) -e ".[test]"

services:
	bash deploy/kafka.sh start
	bash deploy/postgres.sh start
	bash deploy/dovecot.sh install
	bash deploy/test-tools.sh install >/dev/null

stop-services:
	bash deploy/kafka.sh stop
	bash deploy/postgres.sh stop

lint:
	$(PYTHON) -m ruff check .

unit:
	$(PYTHON) -m pytest tests --ignore=tests/integration

integration: services
	$(PYTHON) -m pytest tests/integration

bench: services     ## the pipeline on Kafka + PostgreSQL; figures go to docs/benchmarks.md by hand
	INTAKE_TRANSPORT=kafka INTAKE_STORE__URL=postgresql+psycopg://intake:intake@127.0.0.1:5432/intake \
		$(PYTHON) -m pipeline.cli bench --messages 20000 --json

# The two commands a newcomer needs:
#   make run   start Medic on the embedded default (SQLite, no external services)
#   make test  run the whole test suite (starts throwaway PostgreSQL and Redis itself)
# Also: make fuzz (schemathesis over the v2 API of a live server, docs/security.md), make lint,
# make format, make schema, make bench-ingest, make bench-sweep, make bench-soak,
# make bench-deliveries.
.PHONY: run test lint format bench-ingest bench-sweep bench-soak schema fuzz bench-deliveries

PYTHON ?= python3
PORT ?= 8000

run:
	@PORT=$(PORT) PYTHON=$(PYTHON) bash scripts/run.sh

test:
	@PYTHON=$(PYTHON) bash scripts/test.sh $(ARGS)

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

schema:
	MEDIC_EMBEDDED=1 .venv/bin/python manage.py spectacular --validate --fail-on-warn --file var/openapi.yaml

fuzz:
	@PYTHON=$(PYTHON) bash scripts/fuzz.sh

bench-ingest:
	@PYTHON=$(PYTHON) bash bench/ingest/run.sh

bench-sweep:
	@PYTHON=$(PYTHON) bash bench/sweep/run.sh

bench-soak:
	@PYTHON=$(PYTHON) bash bench/soak/run.sh

bench-deliveries:
	@bash bench/deliveries/run.sh $(PROFILE)

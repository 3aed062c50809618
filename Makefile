# The two commands of the README: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.requirements-installed
# The tests' command-line tools (datacontract-cli), in a virtualenv of their own: they pin other
# versions of the project's dependencies (duckdb) than the portal does.
TOOLS       := .venv-tools
TOOLS_STAMP := $(TOOLS)/.requirements-installed
HOST   ?= 127.0.0.1
PORT   ?= 8501

API_PORT ?= 8000

.PHONY: run test test-fast lint demo docs clean help api tools stack-up stack-down test-trino test-sso

help:
	@echo "make run    start the portal on http://$(HOST):$(PORT) (builds the demo on first run)"
	@echo "make test   run the whole test suite"
	@echo "make api    start the REST API on http://$(HOST):$(API_PORT) (OpenAPI docs at /docs)"
	@echo "make demo   rebuild the demo silver data and warehouse"
	@echo "make docs   generate and serve dbt's own docs site on http://$(HOST):8081"
	@echo "make lint   ruff and mypy"
	@echo "make tools  the tests' command-line tools (datacontract-cli) in .venv-tools"
	@echo "make test-trino   the trino tier against a local Trino + Nessie (starts and stops it)"
	@echo "make test-sso     the sign-in tier against a local Keycloak (downloads, starts and stops it)"
	@echo "make stack-up / make stack-down   start / stop the local Trino + Nessie stack"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when requirements.txt changes.
$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(TOOLS_STAMP): tools-requirements.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --disable-pip-version-check -q -r tools-requirements.txt
	touch $@

tools: $(TOOLS_STAMP)

run: $(STAMP)
	$(BIN)/python -m portal demo --if-missing
	$(BIN)/python -m portal ui --host $(HOST) --port $(PORT)

test: $(STAMP) $(TOOLS_STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

api: $(STAMP)
	$(BIN)/python -m portal demo --if-missing
	$(BIN)/python -m portal api --host $(HOST) --port $(API_PORT)

demo: $(STAMP)
	$(BIN)/python -m portal demo

docs: $(STAMP)
	$(BIN)/python -m portal demo --if-missing
	$(BIN)/python -m portal dbt docs generate
	$(BIN)/python -m portal dbt docs serve --host $(HOST) --port 8081 --no-browser

clean:
	rm -rf var dbt/target dbt/logs

# --- The production engine, locally: Trino + Iceberg + Nessie (deploy/stack.sh) --------------------
TRINO_TEST_SCALE ?= 0.02

stack-up:
	deploy/stack.sh up

stack-down:
	deploy/stack.sh down

# Starts the stack unless it is already up, loads the demo silver tables into nessie.silver,
# runs the trino-marked tests, and stops the stack again only if this target started it.
test-trino: $(STAMP)
	@set -e; \
	if ! deploy/stack.sh status >/dev/null 2>&1; then \
	  trap "deploy/stack.sh down" EXIT INT TERM; deploy/stack.sh up || exit 1; \
	fi; \
	$(BIN)/python -m portal load-trino --scale $(TRINO_TEST_SCALE) || exit 1; \
	$(BIN)/python -m pytest -m trino tests/trino

# The sign-in tier: Keycloak from Maven Central (cached in ~/.cache/asgard), the realm of
# tests/sso/realm.json, stopped afterwards unless it was already running.
test-sso: $(STAMP)
	@set -e; \
	if ! deploy/keycloak.sh status >/dev/null 2>&1; then \
	  trap "deploy/keycloak.sh down" EXIT INT TERM; deploy/keycloak.sh up || exit 1; \
	fi; \
	$(BIN)/python -m pytest -m sso tests/sso

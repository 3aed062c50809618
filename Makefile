# The two commands of the README: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.requirements-installed
HOST   ?= 127.0.0.1
PORT   ?= 8501

.PHONY: run test test-fast lint demo docs clean help

help:
	@echo "make run    start the portal on http://$(HOST):$(PORT) (builds the demo on first run)"
	@echo "make test   run the whole test suite"
	@echo "make demo   rebuild the demo silver data and warehouse"
	@echo "make docs   generate and serve dbt's own docs site on http://$(HOST):8081"
	@echo "make lint   ruff and mypy"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when requirements.txt changes.
$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

run: $(STAMP)
	$(BIN)/python -m portal demo --if-missing
	$(BIN)/streamlit run portal/ui/app.py --server.address $(HOST) --server.port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/python -m portal demo

docs: $(STAMP)
	$(BIN)/python -m portal demo --if-missing
	$(BIN)/python -m portal dbt docs generate
	$(BIN)/python -m portal dbt docs serve --host $(HOST) --port 8081 --no-browser

clean:
	rm -rf var dbt/target dbt/logs

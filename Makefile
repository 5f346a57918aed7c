# `make run` and `make test` each do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run examples test lint typecheck clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/profd serve --data-dir profd-data

examples: $(STAMP)
	$(BIN)/profd process --data-dir profd-data examples/*.json
	$(BIN)/profd outcomes --data-dir profd-data
	$(BIN)/profd profiles list --data-dir profd-data

lint: $(STAMP)
	$(BIN)/ruff check profd tests bench
	$(BIN)/ruff format --check profd tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

clean:
	rm -rf $(VENV) profd-data .pytest_cache .mypy_cache .ruff_cache

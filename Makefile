# Two commands an admin needs: `make run` and `make test`. Each sets up everything it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/leadrelay --config app.yaml check
	$(BIN)/leadrelay --config app.yaml serve

# The machine's PostgreSQL (trust auth): its tests make a schema per test there and drop it.
test: export LEADRELAY_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
test: export LEADRELAY_TEST_STORE_POSTGRESQL ?= $(LEADRELAY_TEST_POSTGRES_URL)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/route_bench.py
	$(BIN)/python bench/hubspot_bench.py
	$(BIN)/python bench/sweep_bench.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache

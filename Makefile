# Two commands an admin needs: `make run` and `make test`. Each sets up everything it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where `make run` serves: `PORT=8080 make run` or `make run PORT=8080`.
PORT ?= 8000

.PHONY: run demo test lint bench clean chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/leadrelay --config app.yaml check
	$(BIN)/leadrelay --config app.yaml serve --port $(PORT)

# No CRM needed: stand-in CRMs, a real server and live traffic; Ctrl-C stops it (PORT: 8000).
demo: $(STAMP)
	$(BIN)/leadrelay demo


# The console's browser test drives Debian's chromium (never a browser Playwright downloads).
# Installed here when missing and we are root; otherwise that test says what to install (and
# fails in CI, where it must run).
CHROMIUM ?= /usr/bin/chromium

chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the console's browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "note: no $(CHROMIUM); as root: apt-get install -y chromium (the browser test needs it)"; \
	  fi; \
	fi

# The machine's PostgreSQL (trust auth): its tests make a schema per test there and drop it.
test: export LEADRELAY_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
test: export LEADRELAY_TEST_STORE_POSTGRESQL ?= $(LEADRELAY_TEST_POSTGRES_URL)
test: $(STAMP) chromium
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

# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit e2e screenshots bench bench-peers clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Starts a server on a temporary SQLite file, runs the parallel-review example's worker and
# main, prints the results, stops what it started.
demo: install
	$(BIN)/python scripts/demo.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# The PostgreSQL half of the suites needs a server: scripts/ensure-postgres starts (or
# installs) one on 127.0.0.1:5432 unless POLOS_TEST_PG_ADMIN_URL points elsewhere. The
# dashboard's browser test needs Debian's chromium: scripts/ensure-chromium installs it.
test: lint typecheck
	scripts/ensure-postgres
	scripts/ensure-chromium
	$(BIN)/pytest -q

unit: install
	$(BIN)/pytest -q tests/unit

e2e: install
	scripts/ensure-postgres
	scripts/ensure-chromium
	$(BIN)/pytest -q tests/e2e

# The dashboard's screenshots in docs/img (a 1,000-child fan-out, photographed by chromium).
screenshots: install
	scripts/ensure-chromium
	$(BIN)/python scripts/screenshots.py

# The SQL floor, the fan-out (N = 1,000 and 10,000) and the latency on SQLite, then one table
# (bench/README.md; BENCH_* variables as in bench/run.sh).
bench: install
	bash bench/run.sh

# Ours, then each peer engine (../shared/bench/peers, installed under bench/.peers by its
# setup.sh when missing), one at a time, then the ratios (PEERS, BENCH_SIZES, ...: bench/peers.sh).
bench-peers: install
	bash bench/peers.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

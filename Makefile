# `make demo` and `make test` work on a fresh machine: each sets up what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup test demo lint bench clean

$(BIN)/harness: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

setup: $(BIN)/harness
	@command -v wrk >/dev/null || echo "note: wrk is not installed (apt-get install wrk)"

test: setup
	$(BIN)/pytest -q

demo: setup
	$(BIN)/harness demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) _output .pytest_cache .mypy_cache .ruff_cache

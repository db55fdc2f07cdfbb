# `make demo` and `make test` work on a fresh machine: each sets up what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup system test demo lint bench clean

$(BIN)/harness: pyproject.toml | system
	@$(PYTHON) -m venv $(VENV) || { echo "cannot make a virtualenv: install python3-venv (apt-get install -y python3-venv)" >&2; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

# The system's part (wrk, taskset, ip, venv), then the virtualenv with the package.
setup: system $(BIN)/harness

system:
	@PYTHON=$(PYTHON) tools/system-deps

test: setup
	$(BIN)/pytest -q --durations=15

demo: setup
	$(BIN)/harness demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) _output .pytest_cache .mypy_cache .ruff_cache

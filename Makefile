# Two commands on a fresh machine: `make demo` and `make test` (both install every extra).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.edgekit-installed

.PHONY: install demo test test-slow lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all,test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python samples/demo.py

lint: install
	$(BIN)/ruff check edgekit tests benchmarks samples
	$(BIN)/ruff format --check edgekit tests benchmarks samples

test: lint
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

format: install
	$(BIN)/ruff format edgekit tests benchmarks samples
	$(BIN)/ruff check --fix edgekit tests benchmarks samples

clean:
	rm -rf $(VENV) build .pytest_cache

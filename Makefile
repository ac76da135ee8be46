# The two commands of the README's quick start: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/costplane: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/costplane

.PHONY: setup demo test lint
setup: $(BIN)/costplane

demo: setup
	$(BIN)/costplane demo

lint: setup
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy --strict src/costplane

test: lint
	$(BIN)/pytest -q

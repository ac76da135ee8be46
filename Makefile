# The two commands of the README's quick start: `make demo` and `make test`.
# Both install exactly what requirements/dev.lock names (versions and hashes), so a fresh machine
# gets the product that was tested, whatever the registries have released since. `make lock`
# refreshes the lock files on purpose; commit them together with the pyproject.toml change.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements/dev.lock
LOCK_ARGS := --generate-hashes --python-version 3.11 --universal

$(BIN)/costplane: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(BIN)/costplane

.PHONY: setup demo test lint lock
setup: $(BIN)/costplane

demo: setup
	$(BIN)/costplane demo

lint: setup
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy --strict src/costplane

test: lint
	$(BIN)/pytest -q

# Deliberate upgrades only: resolves pyproject.toml's ranges anew and rewrites both lock files.
lock:
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile pyproject.toml requirements/build.in --extra dev --extra demo $(LOCK_ARGS) -o $(LOCK)
	$(PYTHON) -m uv pip compile pyproject.toml requirements/build.in $(LOCK_ARGS) -o requirements/runtime.lock

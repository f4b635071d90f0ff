# Each target creates .venv on first use, so a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/monitor.yaml

.PHONY: run test lint format bench container-test clean

$(BIN)/monitor: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $@

run: $(BIN)/monitor
	$(BIN)/monitor run -c $(CONFIG)

test: $(BIN)/monitor
	$(BIN)/pytest -q

lint: $(BIN)/monitor
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

format: $(BIN)/monitor
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BIN)/monitor
	$(BIN)/python bench/poll.py

# Builds the image and runs it against a local feed server (podman or docker; see
# tests/container/run_container_test.sh). Exit 77: no container engine here.
container-test:
	bash tests/container/run_container_test.sh

clean:
	rm -rf $(VENV) data/*.db*

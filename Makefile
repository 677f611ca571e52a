# Two commands: `make run` (the whole platform, embedded default) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint protos protos-check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/backorder up

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/buf lint
	$(BIN)/python tools/gen_protos.py --check

test: $(VENV)/.installed-dev lint
	bash tools/ensure_chromium.sh
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

protos: $(VENV)/.installed-dev
	$(BIN)/python tools/gen_protos.py

protos-check: $(VENV)/.installed-dev
	$(BIN)/python tools/gen_protos.py --check

clean:
	rm -rf .backorder

# Two commands: `make run` (the whole platform, embedded default) and `make test` (the suite).
# Every install comes from uv.lock (hashes included); `make lock` updates it on purpose.
PYTHON ?= python3
VENV ?= .venv
TOOLS ?= .tools
BIN := $(VENV)/bin
UV := $(TOOLS)/bin/uv
# uv never downloads a Python of its own: it uses $(PYTHON).
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test lint lock lock-check types imports protos protos-check bench clean

# uv itself, pinned by hash, in a folder of its own (uv sync keeps .venv exactly as locked).
$(UV): tools/requirements-uv.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --disable-pip-version-check --require-hashes -r tools/requirements-uv.txt
	touch $@

$(VENV)/.installed-run: uv.lock pyproject.toml | $(UV)
	$(UV) sync -q --frozen --no-dev --python $(PYTHON)
	rm -f $(VENV)/.installed-dev
	touch $@

$(VENV)/.installed-dev: uv.lock pyproject.toml | $(UV)
	$(UV) sync -q --frozen --extra dev --python $(PYTHON)
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/backorder up

# The lock matches pyproject.toml; style; the proto contracts; generated code; types; dependency rules.
lint: $(VENV)/.installed-dev lock-check
	$(BIN)/ruff check .
	$(BIN)/buf lint
	$(BIN)/python tools/gen_protos.py --check
	$(BIN)/mypy
	$(BIN)/lint-imports

lock-check: | $(UV)
	$(UV) lock --check --python $(PYTHON)

# Re-resolve uv.lock from pyproject.toml (newest allowed versions); commit the result.
lock: | $(UV)
	$(UV) lock --upgrade --python $(PYTHON)

types: $(VENV)/.installed-dev
	$(BIN)/mypy

imports: $(VENV)/.installed-dev
	$(BIN)/lint-imports

test: $(VENV)/.installed-dev lint
	bash tools/ensure_chromium.sh
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

protos: $(VENV)/.installed-dev
	$(BIN)/python tools/gen_protos.py

protos-check: $(VENV)/.installed-dev
	$(BIN)/python tools/gen_protos.py --check

clean:
	rm -rf .backorder

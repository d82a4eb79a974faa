# Two commands for a new user: `make demo` and `make test`. Both stand on `make install`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Node 22 and the MCP Inspector CLI, for the black-box protocol check (tests/test_inspector.py).
# Both come from the npm registry into tools/node (git-ignored); the system node is not used.
NODE_VERSION := 22.23.3
INSPECTOR_VERSION := 2.12.0
NODE_DIR := tools/node
NODE_ARCH := $(shell uname -m | sed -e 's/x86_64/x64/' -e 's/aarch64/arm64/')
NODE_STAMP := $(NODE_DIR)/.installed-$(NODE_VERSION)-$(INSPECTOR_VERSION)

.PHONY: install demo test lint types schemas wheel bench node clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (set PYTHON=python3.11)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# npm's own `node` package fetches its binary in an install script (which npm >= 11.19 does not run
# unasked), so install the platform package that ships the binary itself.
node: $(NODE_STAMP)

$(NODE_STAMP):
	@command -v npm >/dev/null || { echo "npm is needed once to fetch node $(NODE_VERSION) and the MCP Inspector (apt-get install npm)"; exit 1; }
	rm -rf $(NODE_DIR) && mkdir -p $(NODE_DIR)
	npm install --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error \
		node-linux-$(NODE_ARCH)@$(NODE_VERSION) @modelcontextprotocol/inspector@$(INSPECTOR_VERSION)
	$(NODE_DIR)/node_modules/node-linux-$(NODE_ARCH)/bin/node --version
	@touch $(NODE_STAMP)

demo: install
	$(BIN)/runloop-scenarios-mcp demo

# pytest includes the wheel build and a fresh-venv install (tests/test_packaging.py) and the MCP Inspector
# check (tests/test_inspector.py, which needs `node`).
test: install node
	$(BIN)/python -m pytest -q
	$(BIN)/ruff check server tests bench
	$(BIN)/ruff format --check server tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/runloop-scenarios-mcp schemas --check

lint:
	$(BIN)/ruff check server tests bench
	$(BIN)/ruff format --check server tests bench
	$(BIN)/lint-imports

types:
	$(BIN)/mypy

schemas: install
	$(BIN)/runloop-scenarios-mcp schemas --write

# The distributable wheel, built offline with the hatchling of the dev environment.
wheel: install
	rm -rf dist && $(BIN)/python -m pip wheel . --no-deps --no-build-isolation --quiet --disable-pip-version-check -w dist
	@ls dist/*.whl

# Every bench/*.py, stdin closed (bench/naive_server.py is a stdio server other benches launch: it ends at once).
bench: install
	@set -e; for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script </dev/null; done

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache $(NODE_DIR)

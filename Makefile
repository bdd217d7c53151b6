# Parley: two commands on a fresh machine: `make dev` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
AGENTS_VENV := $(CURDIR)/.venv-agents
PYTEST_ARGS ?=

.PHONY: help
help:
	@echo "make dev     set up and start the whole stack on this machine (http://127.0.0.1:7880, devkey/secret)"
	@echo "make test    set up and run every test"
	@echo "make lint    ruff, mypy --strict, generated-code drift"
	@echo "make bench   run the benchmarks (results: bench/RESULTS.md)"
	@echo "make proto   regenerate libs/protocol from proto/"

# --- setup -------------------------------------------------------------------------------------

$(CURDIR)/.tools/bin/uv:
	@echo "uv not found: installing it into .tools with pip"
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet uv

MEET_STATIC := services/signaling/src/parley/signaling/meet/static

.PHONY: setup
setup: $(UV) $(MEET_STATIC)/meet.js
	$(UV) sync --all-packages --frozen --quiet
	@$(BIN)/python -c "import parley.signaling, parley.sfu, livekit.rtc" || { echo "setup failed: the workspace did not install"; exit 1; }

# An own virtualenv for livekit-agents, which pins an older livekit (1.1.x).
$(AGENTS_VENV)/.installed: tests/agents/requirements.txt | $(UV)
	$(UV) venv --quiet --allow-existing -p 3.11 $(AGENTS_VENV)
	$(UV) pip install --quiet --python $(AGENTS_VENV)/bin/python -r tests/agents/requirements.txt
	touch $@

# Node SDK (livekit-server-sdk) and browser driver for the tests.
tests/node/node_modules/.installed: tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The meet page: livekit-client bundled with esbuild, served by the edge at /.
web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(MEET_STATIC)/meet.js: web/node_modules/.installed web/build.mjs web/index.html web/style.css $(wildcard web/src/*.ts)
	cd web && npm run --silent build

tests/browser/node_modules/.installed: tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: test-deps
test-deps: setup $(AGENTS_VENV)/.installed tests/node/node_modules/.installed tests/browser/node_modules/.installed
	@bash scripts/install-system-deps.sh

# --- run -----------------------------------------------------------------------------------------

.PHONY: dev
dev: setup
	$(BIN)/parley dev $(DEV_ARGS)

.PHONY: test
test: test-deps
	PARLEY_AGENTS_PYTHON=$(AGENTS_VENV)/bin/python $(BIN)/pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: setup
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

# lint type-checks the test and bench code too. sdk_scripts import each other as top-level modules (they run
# as scripts), hence their own invocation with MYPYPATH. tests/agents/{echo_agent,echo_user,probe_agent}.py are
# left out: they import livekit.agents, which is installed only in .venv-agents (they do pass with
# `mypy --python-executable .venv-agents/bin/python tests/agents/echo_agent.py ...`).
.PHONY: lint
lint: setup web/node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(addprefix -p ,$(shell $(BIN)/python scripts/packages.py))
	$(BIN)/mypy $(wildcard tests/integration/*.py) tests/contracts tests/agents/harness.py bench $(sort $(dir $(wildcard libs/*/tests/*.py services/*/tests/*.py apps/*/tests/*.py))) && MYPYPATH=tests/integration/sdk_scripts $(BIN)/mypy tests/integration/sdk_scripts
	$(BIN)/python libs/protocol/scripts/gen.py --check
	cd web && npm run --silent check

.PHONY: fmt
fmt: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: proto
proto: setup
	$(BIN)/python libs/protocol/scripts/gen.py

.PHONY: bench
bench: test-deps
	PARLEY_AGENTS_PYTHON=$(AGENTS_VENV)/bin/python $(BIN)/python -m bench $(BENCH_ARGS)

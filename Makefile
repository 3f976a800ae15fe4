# The two commands a new user needs: `make run` (set up + start the stack on embedded defaults)
# and `make test` (every test). uv is installed into .tools/ when it is not on PATH.

SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)

.PHONY: run test setup seed token lint fmt typecheck schemas check clean bench eval screenshots docs

$(UV):
	@echo "uv not found: installing it into .tools/ (from PyPI)"
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

setup: $(UV)
	$(UV) sync --frozen

run: setup
	$(UV) run python scripts/stack.py

# the production-like topology on one machine: agent replicas on 8101/8102 sharing PostgreSQL
# (database agent_local, created and migrated), gateway replicas on 8100/8200 sharing Redis
# (docs/deployment.md). TOPOLOGY_ARGS=--check starts, checks health and exits.
.PHONY: prod-local
prod-local: setup
	$(UV) run python scripts/topology.py $(TOPOLOGY_ARGS)

seed: setup
	$(UV) run agent-service seed

# a development internal token for calling the agent service directly (lives 60 s)
USER_ID ?= u-alice
COMPANY ?= acme-hvac
token: $(UV)
	@$(UV) run --frozen --quiet agent-service mint-token --user $(USER_ID) --company $(COMPANY)

test: setup
	$(UV) run pytest $(PYTEST_ARGS)

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .

fmt: setup
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

typecheck: setup
	$(UV) run mypy

# the module maps of docs/architecture.md, from each module's docstring
docs: setup
	.venv/bin/python scripts/module_map.py

schemas: setup
	$(UV) run python -m contracts.schema_export

# the README's screenshots of the chat page (light and dark, desktop and phone) into docs/img/
screenshots: setup
	$(UV) run python scripts/screenshots.py $(SCREENSHOT_ARGS)

check: lint typecheck test

# the whole stack under load (~10 min on 2 cores): writes docs/benchmarks.md, .json and the plot
bench: setup
	$(UV) run python -m benchmarks.run $(BENCH_ARGS)

# the correctness eval (docs/evals.md): the question set against the offline provider in process,
# or EVAL_ARGS="--agent-url URL" / "--gateway-url URL"; AGENT_PROVIDER=openai … for a real model
eval: setup
	$(UV) run python -m evals.run $(EVAL_ARGS)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

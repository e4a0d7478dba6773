# The two commands: `make run` and `make test`. Everything they need is installed
# from the lock file (uv.lock) or Debian's packages; nothing by hand.
.DEFAULT_GOAL := help
SHELL := /bin/bash

UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
CLIENTS := tests/consumers/clients
NODE_BIN := $(CLIENTS)/node_modules/.bin
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help install run test quick fuzz contract-test lint postgres chromium cluster-tools cluster wrk bench bench-scale migration clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python python3
	@touch $@

# The Node tools that check the contract as its users consume it (linter, TypeScript client).
$(CLIENTS)/node_modules/.installed: $(CLIENTS)/package-lock.json $(CLIENTS)/package.json
	npm ci --prefix $(CLIENTS) --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.synced ## install the locked dependencies into .venv

# Created readable by its owner only (0600): it holds the secret that signs tokens.
.env:
	@umask 077; if [ -z "$$BETTER_AUTH_SECRET" ]; then \
	  echo "BETTER_AUTH_SECRET=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')" > .env; \
	  echo "Created .env with a random BETTER_AUTH_SECRET."; \
	else touch .env; fi

run: install .env ## serve the API on http://127.0.0.1:8000 with the embedded SQLite database
	$(BIN)/todo-api migrate
	$(BIN)/todo-api serve

# Not part of `install`: `make run` needs only python3, no Node.
lint: install $(CLIENTS)/node_modules/.installed ## ruff, mypy, the contract's own validation and the contract linter
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/openapi-spec-validator openapi/tasks.yaml
	REDOCLY_SUPPRESS_UPDATE_NOTICE=true $(NODE_BIN)/redocly lint --config openapi/redocly.yaml --format stylish openapi/tasks.yaml

postgres: ## install PostgreSQL from Debian's packages when its binaries are missing
	@if command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then :; \
	else echo "Installing PostgreSQL from Debian's packages..."; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) \
	    apt-get install -y -qq --no-install-recommends postgresql >/dev/null; fi
	@# As root the server runs as the `postgres` user (PostgreSQL refuses root).
	@if [ "$$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then useradd --system postgres; fi

chromium: ## install Debian's Chromium for the Swagger console test when it is missing
	@if [ -x $(CHROMIUM) ]; then :; \
	else echo "Installing Chromium from Debian's packages..."; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null; fi

# HAProxy and PgBouncer for the cluster tier and `make cluster`. As root, PgBouncer runs as
# the `postgres` user (it refuses root), which the postgres target provides.
cluster-tools: postgres ## install HAProxy and PgBouncer from Debian's packages when missing
	@if command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ]; then :; \
	else echo "Installing HAProxy from Debian's packages..."; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $(SUDO) apt-get install -y -qq --no-install-recommends haproxy >/dev/null; fi
	@if command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; then :; \
	else echo "Installing PgBouncer from Debian's packages..."; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $(SUDO) apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null; fi

cluster: install cluster-tools ## PostgreSQL, PgBouncer, 3 instances x 2 workers and HAProxy on loopback, until Ctrl-C
	$(BIN)/python -m tests.support.cluster

test: lint postgres chromium cluster-tools ## the whole suite, on SQLite and a throwaway PostgreSQL
	$(BIN)/pytest

fuzz: install postgres ## the contract suite with ten times the examples, on both databases
	CONTRACT_SCALE=10 $(BIN)/pytest -q tests/contract

# The token goes through the environment so that make never echoes it.
contract-test: install ## Schemathesis against a running server: make contract-test URL=... TOKEN=... USER_ID=...
	@if [ -z "$(URL)" ] || [ -z "$(TOKEN)" ] || [ -z "$(USER_ID)" ]; then \
	  echo "usage: make contract-test URL=http://127.0.0.1:8000 TOKEN=<bearer token> USER_ID=<its sub>"; \
	  exit 2; fi
	@export CONTRACT_TOKEN='$(TOKEN)' CONTRACT_USER_ID='$(USER_ID)' SCHEMATHESIS_HOOKS=tests.support.contract_hooks; \
	  $(BIN)/st run '$(URL)/api/openapi.json' --header "Authorization: Bearer $$CONTRACT_TOKEN"

# The in-process tiers only: no PostgreSQL, Node or Chromium needed.
quick: install ## the inner loop: ruff, mypy, then the in-process tiers on SQLite, stop at the first failure
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -x -q -m "not postgresql" tests/api tests/db tests/contract

wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; }

bench: install postgres wrk ## load test on PostgreSQL with wrk (BENCH_ARGS="--modes mixed --duration 15")
	$(BIN)/python -m tests.bench.bench $(BENCH_ARGS)

bench-scale: install postgres wrk ## list latency at 10^4 and 10^6 rows, a 10k-task user, and the plans
	$(BIN)/python -m tests.bench.scale $(BENCH_ARGS)

migration: install ## write the next migration by autogenerate: make migration MESSAGE="add tags"
	@if [ -z "$(MESSAGE)" ]; then echo 'usage: make migration MESSAGE="what it changes"'; exit 2; fi
	$(BIN)/python -m db.migrate "$(MESSAGE)"

clean: ## remove the environments and local databases
	rm -rf $(VENV) $(TOOLS) $(CLIENTS)/node_modules tests/consumers/interop/node_modules $(CLIENTS)/generated $(CLIENTS)/build tasks.db tasks.db-wal tasks.db-shm .mypy_cache .ruff_cache .pytest_cache

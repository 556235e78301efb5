# LeadPortal — `make run` serves the portal with demo data, `make test` runs lint and the fast tier of the
# tests (the everyday loop), `make test-all` lint and every test (what .ci/run does).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-all lint bench migrate seed clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

# No statement timeout for migrations: building an index on a big table takes longer than a request may.
# The lock timeout stays: a migration waiting for a lock would hold every request queued behind it.
migrate: $(VENV)/.installed
	DATABASE_STATEMENT_TIMEOUT=0 $(PY) manage.py migrate --no-input

seed: migrate
	$(PY) manage.py seed_demo

# Embedded default (nothing set): SQLite, tasks eager, Django's runserver.
# DATABASE_URL set: gunicorn serves the portal (WEB_WORKERS processes × WEB_THREADS threads, 30 s timeout).
# REDIS_URL or CELERY_BROKER_URL set: Celery workers and beat too, the workers with a longer statement
# timeout (WORKER_STATEMENT_TIMEOUT ms) for a full rescoring's batches; beat's schedule in var/.
WEB_WORKERS ?= 3
WEB_THREADS ?= 4
WORKER_STATEMENT_TIMEOUT ?= 600000
run: seed
	@mkdir -p var
	@echo ""
	@echo "LeadPortal on http://$(HOST):$(PORT)/"
	@echo "  admin        http://$(HOST):$(PORT)/admin/"
	@echo "  API          http://$(HOST):$(PORT)/api/v1/   docs http://$(HOST):$(PORT)/api/docs/"
	@echo "  health       http://$(HOST):$(PORT)/healthz"
	@if [ -n "$$DATABASE_URL" ]; then \
		WEB="$(VENV)/bin/gunicorn leadportal.wsgi:application --bind $(HOST):$(PORT) --workers $(WEB_WORKERS) --threads $(WEB_THREADS) --timeout 30 --access-logfile -"; \
	else \
		WEB="$(PY) manage.py runserver $(HOST):$(PORT)"; \
	fi; \
	if [ -n "$$REDIS_URL$$CELERY_BROKER_URL" ]; then \
		echo "Starting Celery workers (scoring + default queue; routing) and beat against $${CELERY_BROKER_URL:-$$REDIS_URL}"; \
		Q=$${CELERY_QUEUE:-leadportal}; \
		DATABASE_STATEMENT_TIMEOUT=$(WORKER_STATEMENT_TIMEOUT) $(VENV)/bin/celery -A leadportal worker --loglevel=info --concurrency=2 -Q $$Q,$$Q.scoring -n scoring@%h & \
		DATABASE_STATEMENT_TIMEOUT=$(WORKER_STATEMENT_TIMEOUT) $(VENV)/bin/celery -A leadportal worker --loglevel=info --concurrency=1 -Q $$Q.routing -n routing@%h & \
		$(VENV)/bin/celery -A leadportal beat --loglevel=info --schedule=var/celerybeat-schedule & \
		trap 'kill 0' EXIT INT TERM; \
		$$WEB; \
	else \
		$$WEB; \
	fi

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports  # the layers (pyproject.toml [tool.importlinter])
	$(VENV)/bin/mypy  # the types (pyproject.toml [tool.mypy]: which modules, how strict)

# The tiers are in tests/tiers.py (SLOW, SERIAL). Fast: everything but the slow tests, on TEST_WORKERS
# pytest-xdist workers (each with a test database of its own). All: the same workers run every test but
# the serial ones (real Celery workers, private Redis, outages), which then run alone; both always run.
TEST_WORKERS ?= 2
test: lint
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest -n $(TEST_WORKERS) -m "not slow"

test-all: lint
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest -n $(TEST_WORKERS) -m "not serial"; parallel=$$?; \
	$(VENV)/bin/pytest -m serial; serial=$$?; \
	exit $$(( parallel || serial ))

bench: $(VENV)/.installed
	$(PY) -m bench

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles var

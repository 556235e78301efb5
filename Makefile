# LeadPortal — `make run` serves the portal with demo data, `make test` runs lint and the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench migrate seed clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

migrate: $(VENV)/.installed
	$(PY) manage.py migrate --no-input

seed: migrate
	$(PY) manage.py seed_demo

# With DATABASE_URL and REDIS_URL set: PostgreSQL, a Celery worker and beat. Otherwise SQLite, tasks eager.
run: seed
	@echo ""
	@echo "LeadPortal on http://$(HOST):$(PORT)/"
	@echo "  admin        http://$(HOST):$(PORT)/admin/"
	@echo "  API          http://$(HOST):$(PORT)/api/v1/   docs http://$(HOST):$(PORT)/api/docs/"
	@echo "  health       http://$(HOST):$(PORT)/healthz"
	@if [ -n "$$REDIS_URL" ]; then \
		echo "Starting Celery workers (scoring + default queue; routing) and beat against $$REDIS_URL"; \
		Q=$${CELERY_QUEUE:-leadportal}; \
		$(VENV)/bin/celery -A leadportal worker --loglevel=info --concurrency=2 -Q $$Q,$$Q.scoring -n scoring@%h & \
		$(VENV)/bin/celery -A leadportal worker --loglevel=info --concurrency=1 -Q $$Q.routing -n routing@%h & \
		$(VENV)/bin/celery -A leadportal beat --loglevel=info --schedule=/tmp/leadportal-celerybeat & \
		trap 'kill 0' EXIT INT TERM; \
		$(PY) manage.py runserver $(HOST):$(PORT); \
	else \
		$(PY) manage.py runserver $(HOST):$(PORT); \
	fi

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

test: lint
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest

bench: $(VENV)/.installed
	$(PY) -m bench

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles

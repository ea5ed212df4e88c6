# `make run`: set everything up and run the default experiment.
# `make test`: set everything up and run the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# setuptools informs every flat-layout editable install that a folder named like a package could shadow
# it: information, not a warning about this project (conf/ installs as runner.conf), so it is not shown
INSTALL := PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install --quiet -e

.PHONY: run test test-all test-integration test-ui ui report bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(INSTALL) '.[dev]'
	@# Hydra's own Optuna plugin (optuna 2.10), left by an older checkout, would shadow hydra/sweeper=optuna
	$(BIN)/python -m pip uninstall --quiet --yes hydra-optuna-sweeper 2>/dev/null || true
	touch $(STAMP)

# tests/test_blocks_torch.py checks every block's gradients against PyTorch's autograd where torch is installed
# (it is no dependency). Its CPU build is installed where pip has it at hand (a local wheel, as on this project's
# CI machines); PyPI has no such build (its torch is the CUDA one, gigabytes), so elsewhere nothing is fetched and
# the test is skipped.
TORCH_CPU := torch==2.13.0+cpu
TORCH_TRIED := $(VENV)/.torch-tried

$(TORCH_TRIED): $(STAMP)
	$(BIN)/python -m pip install --quiet '$(TORCH_CPU)' 2>/dev/null || \
		echo "no CPU build of PyTorch at hand ($(TORCH_CPU)): tests/test_blocks_torch.py is skipped"
	touch $@

run: $(STAMP)
	$(BIN)/backprop-lab $(ARGS)

test: $(STAMP) $(TORCH_TRIED)  ## two workers: most tests wait on subprocesses and the store, not on a core
	$(BIN)/python -m pytest -q -n 2 $(ARGS)

test-all: $(STAMP) $(TORCH_TRIED)  ## the slow studies too
	$(BIN)/python -m pytest -q -n 2 -m "not integration and not ui" $(ARGS)

test-integration: $(STAMP)  ## Ray and submitit launchers, PostgreSQL behind mlflow server: installs them (minutes)
	$(INSTALL) '.[dev,integration]'
	command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		{ [ "$$(id -u)" = 0 ] && apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }
	$(BIN)/python -m pytest -q -m integration $(ARGS)

test-ui: $(STAMP)  ## MLflow's UI in Debian's chromium, driven by Playwright; rewrites docs/figures/mlflow_*.png
	$(INSTALL) '.[dev,ui]'
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
	$(BIN)/python -m pytest -q -m ui $(ARGS)

ui: $(STAMP)  ## MLflow's UI on the embedded store: open http://127.0.0.1:5000/#/experiments/0/runs?workflowType=machine_learning
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --workers 1 --backend-store-uri sqlite:///$(CURDIR)/outputs/mlflow.db

report: $(STAMP)  ## make report EXP=vanishing_depth: the report of an experiment's latest sweep
	@[ -n "$(EXP)$(ARGS)" ] || { echo "make report: give an experiment: make report EXP=<name> (e.g. EXP=vanishing_depth;" \
		"EXP=default for runs without a preset), or a sweep run with tracking=none: make report ARGS='--folder <its folder>'" >&2; exit 2; }
	$(BIN)/python -m runner.report $(EXP) $(ARGS)

bench: $(STAMP)  ## step cost vs peers and sweep cost, written to docs/benchmarks.md (~30 minutes; not part of the tests)
	$(BIN)/python benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) outputs/* multirun

"""What opening a sweep's parent run takes and gives, as plain data, so that another process can open it.

With ``hydra/launcher=joblib`` one of joblib's early workers opens it: they import MLflow while the sweep is
checked, and the launching process, had it opened the run, would import MLflow only after the checks
(~1.2–1.7 s of one core, measured) before the first job could start.  It imports MLflow while the jobs run
instead (``import_while_jobs_run``), for the sweep's end.  With other launchers it opens the run itself.
"""

from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path
from typing import NamedTuple

from omegaconf import DictConfig

from ..config.overrides import key_values, sweep_params, typed_overrides
from ..config.recorded import description_of
from ..processes import imports_unscanned
from ..tracking.checks import original_cwd
from .joblib_workers import JoblibWorkers

PARENT_RUN_MODULE = "runner.sweep.parent_run"  # imports MLflow


class ParentRequest(NamedTuple):
    """A sweep's parent run as its config and command describe it."""

    uri: str | None  # tracking.uri
    cwd: Path  # where the command was started (a relative store path is taken from it)
    experiment: str | None  # tracking.experiment
    preset: str | None
    experiment_note: str | None  # a new experiment's description (its preset's)
    name: str  # the run's name: the preset and the overrides
    sweep_id: str
    command: str
    description: str
    owner_pid: int  # the launching process: a later command closes the run as killed once it is gone


class Experiment(NamedTuple):
    """The experiment of a sweep's parent run, made or found in its store."""

    uri: str
    experiment_id: str
    name: str


class OpenedParent(NamedTuple):
    """A sweep's parent run, opened."""

    experiment: Experiment
    run_id: str


def request_of(config: DictConfig, sweep_id: str) -> ParentRequest:
    """The parent run of the sweep ``config`` launches."""
    preset = config.hydra.runtime.choices.get("experiment")
    overrides = typed_overrides(config.hydra)
    shown = [o for o in overrides if not o.startswith("experiment=")]
    return ParentRequest(
        uri=config.tracking.uri, cwd=original_cwd(config), experiment=config.tracking.experiment, preset=preset,
        experiment_note=description_of(config) if preset else None,
        name=f"{preset or 'sweep'}" + (f" [{' '.join(shown)}]" if shown else ""), sweep_id=sweep_id,
        command="backprop-lab -m " + " ".join(overrides),
        description=description_of(config, key_values(overrides), sweep_params(config.hydra)), owner_pid=os.getpid())


def in_a_worker_or_here(workers: JoblibWorkers | None, step: str, *args):
    """``runner.sweep.parent_run.<step>(*args)`` run by one of joblib's early workers where they started (ready),
    else here, importing MLflow."""
    if workers is not None and workers.started:
        return workers.call(PARENT_RUN_MODULE, step, *args)
    with imports_unscanned():
        module = importlib.import_module(PARENT_RUN_MODULE)
    return getattr(module, step)(*args)


def import_while_jobs_run(report: bool) -> None:
    """The modules the sweep's end needs in this process (MLflow's; with the report, pandas and matplotlib:
    ~1.3 s more) imported on a thread while the jobs run, not after them: with a parallel launcher this
    process waits on its workers meanwhile (a first use before they are imported waits for the import)."""
    modules = [PARENT_RUN_MODULE] + (["runner.report.make"] if report else [])
    threading.Thread(target=_imported, args=(modules,), daemon=True, name="sweep-end-imports").start()


def _imported(modules: list[str]) -> None:
    with imports_unscanned():
        for module in modules:
            importlib.import_module(module)

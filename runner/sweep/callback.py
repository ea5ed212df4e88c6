"""Hydra's callback around every command (``hydra.callbacks.checks_and_sweep`` in ``conf/config.yaml``):
checks before any work, the tracking store prepared, and for a sweep its parent run opened once and
closed with the sweep's summary (``runner.sweep.closing``).

Hydra turns an ``Exception`` raised in a callback into a warning and goes on, so a refusal leaves
here as ``Refused`` (a BaseException) and a sweep with failed jobs as ``SweepFailed``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ..config.checks import check_hydra, check_single_run
from ..config.errors import ConfigError, Crashed, Refused, SweepFailed
from ..processes import LAUNCHER_PID, SWEEP_ID_OF_JOBS, VARYING_KEYS, freeze_heap, imports_unscanned, \
    interruptions_deferred, raise_lost_interruption, thaw_heap
from ..run.build import build_once
from ..tracking.checks import check_tracking, original_cwd
from ..tracking.schema import new_sweep_id
from ..tracking.stores import resolve_uri
from . import closing, launch_order
from .composed_once import ComposedOnce
from .joblib_workers import JoblibWorkers
from .jobs import check_sweep, check_sweep_dirs, sweep_jobs, varying_keys
from .parent_opening import import_while_jobs_run, in_a_worker_or_here, request_of
from .search_space import check_search_space, is_sampling

log = logging.getLogger(__name__)


class ChecksAndSweep(Callback):
    """Checks every command before Hydra writes anything; opens and closes a sweep's parent run."""

    def __init__(self) -> None:
        self.sweep: closing.Sweep | None = None

    def __getstate__(self) -> dict:
        """As a parallel launcher ships it to its workers: the sweep stays with the process launching it."""
        return {**self.__dict__, "sweep": None}

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A single run: refused before Hydra creates its run directory if anything is wrong; its build
        is kept for the run."""
        raise_lost_interruption()  # (while Hydra composed the config)
        with _refusals():
            check_hydra(config, multirun=False)
            build_once(check_single_run(config), keep=True)
            check_tracking(config)
            if config.tracking.name == "mlflow":  # made whole (or refused) before Hydra writes anything
                # imported here: MLflow takes ~1.2 s to import (measured), which tracking=none never pays
                with imports_unscanned():
                    from ..tracking.store import open_store

                uri, artifact_root, source = resolve_uri(config.tracking.uri, original_cwd(config))
                open_store(uri, source, artifact_root=artifact_root)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Every job checked before the first starts (joblib's workers start meanwhile); with MLflow, the
        parent run opened (the store and experiment made once, before parallel jobs race to)."""
        raise_lost_interruption()  # (while Hydra composed the config)
        started = time.perf_counter()
        loader = GlobalHydra.instance().config_loader()
        compositions = ComposedOnce.install(loader)  # composed once for the checks, Hydra, workers
        sweep_id = new_sweep_id()
        freeze_heap()  # until the jobs are done (Sweep.jobs_done): Hydra's objects, ours, MLflow's are long-lived
        try:
            n_jobs, parent, workers = _prepared(config, loader, compositions, sweep_id)
        except BaseException:
            thaw_heap()
            raise
        try:  # the parent run made and the sweep this process's, or neither: from here a Ctrl-C or SIGTERM
            # closes the parent as killed (landing between the two, it had left it RUNNING until the next command)
            with _refusals(), interruptions_deferred():
                opened = in_a_worker_or_here(workers, "open_parent", *parent) if parent else None
                self.sweep = closing.Sweep(sweep_id, n_jobs, str(config.hydra.sweep.dir), compositions, opened,
                                           config.tracking.report, started, workers)
                closing.launching(self.sweep)
        except BaseException:
            if closing.current() is None:  # (else the command closes the sweep: cli.main)
                thaw_heap()
                if workers:
                    workers.stop()
            raise
        if parent:
            log.debug("the sweep's parent run %s is open; MLflow imported by this process before its jobs: %s",
                      opened.run_id, "mlflow" in sys.modules)
            import_while_jobs_run(report=config.tracking.report == "auto")
        raise_lost_interruption()  # (while the jobs were checked: the parent run is closed as killed)
        checked = f"a search of {n_jobs} trial(s) checked (its space at its corners)" if is_sampling(config) \
            else f"{n_jobs} job(s) checked"  # a search's trials are asked as it goes: a continued one runs fewer
        print(f"sweep {sweep_id}: {checked}; directory {config.hydra.sweep.dir}", flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """The sweep's closing summary; failed jobs make the command exit non-zero (``SweepFailed``).  The
        sweep stays this process's until it is closed: Ctrl-C during its report closes it as interrupted
        (``cli.main``), where it had left its parent run RUNNING."""
        try:
            self.sweep.close(config)
        except SweepFailed:
            closing.launching(None)
            raise
        closing.launching(None)


class _refusals:
    """A ConfigError leaves as ``Refused``; any other exception as ``Crashed`` (Hydra would reduce it to
    a warning)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, err, trace) -> bool:
        if isinstance(err, ConfigError):
            raise Refused(str(err)) from None
        if isinstance(err, Exception):
            raise Crashed() from err
        return False


def _prepared(config: DictConfig, loader, compositions: ComposedOnce,
              sweep_id: str) -> tuple[int, tuple | None, JoblibWorkers | None]:
    """Every job checked (joblib's workers started meanwhile, and waited for) and the store prepared: the jobs
    planned, what opening the parent run takes (tracking=mlflow: its request and experiment, for
    ``parent_run.open_parent``) and the workers (hydra/launcher=joblib).

    With joblib's workers, one of them prepares the store and then opens the parent run: they import MLflow
    while the jobs are checked, which this process would import only after the checks (``parent_opening``)."""
    workers = None
    try:
        with _refusals():
            check_hydra(config, multirun=True)
            jobs, varying = _planned_jobs(config, loader)
            os.environ[LAUNCHER_PID] = str(os.getpid())  # workers stop when this process is gone
            os.environ[SWEEP_ID_OF_JOBS] = compositions.job_env[SWEEP_ID_OF_JOBS] = sweep_id  # (as the keys below)
            # a job's run name says only what varies: every job's config carries the keys (a Ray node's worker
            # inherits nothing from this process), and so does the environment joblib's workers inherit
            os.environ[VARYING_KEYS] = compositions.job_env[VARYING_KEYS] = json.dumps(varying)
            workers = JoblibWorkers.start(config)  # after the lines above: workers inherit them
            n_jobs = _check_jobs(config, loader, jobs)
            check_tracking(config)
            if workers:
                workers.checked()
                workers.ready()  # (seconds, as they import MLflow)
            parent = None
            if config.tracking.name == "mlflow":
                request = request_of(config, sweep_id)
                parent = request, in_a_worker_or_here(workers, "prepare_experiment", request)
    except BaseException:
        if workers:
            workers.stop()
        raise
    return n_jobs, parent, workers


def _planned_jobs(config: DictConfig, loader) -> tuple[list[list[str]], list[str]]:
    """Each job's overrides (a sampling sweeper's: the fixed ones) and the keys that vary between jobs.
    A grid's jobs are checked after this (``_check_jobs``: joblib's workers start meanwhile); a sampler's
    fixed overrides and space are checked here (the keys it varies are those of the space it checks)."""
    jobs = sweep_jobs(config, loader)
    if not is_sampling(config):
        return jobs, varying_keys(jobs)
    check_sweep(config, loader, jobs)
    # imported here: Optuna takes ~0.3 s to import (measured), which only a search pays
    from .study import study_name, study_storage

    study_name(config, study_storage(config))  # resume=true needs a study to continue
    return jobs, check_search_space(config, loader)


def _check_jobs(config: DictConfig, loader, jobs: list[list[str]]) -> int:
    """A grid's jobs checked, each whole; returns the jobs planned (a sampling sweeper's: its trials)."""
    if is_sampling(config):
        return config.hydra.sweeper.get("n_trials") or len(jobs)
    launch_order.checked(check_sweep(config, loader, jobs))
    check_sweep_dirs(config, len(jobs))
    return len(jobs)

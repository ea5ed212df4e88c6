"""The Hydra callback around every command: checks before any work, the tracking store prepared
once per sweep, and the sweep's closing summary.

Hydra turns an ``Exception`` raised in a callback into a warning and goes on, so a refusal
leaves here as ``Refused`` (a BaseException) and a sweep with failed jobs as ``SweepFailed``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .errors import ConfigError, Crashed, Refused, SweepFailed
from .compositions import RememberedCompositions
from .preflight import (check_hydra, check_single_run, check_sweep, check_sweep_dirs, check_tracking, original_cwd,
                        typed_overrides, varying_keys)
from .search_space import check_search_space, is_sampling
from .processes import LAUNCHER_PID, VARYING_KEYS
from .records import description_of, read_job_records
from .stores import DEFAULT_EXPERIMENT

log = logging.getLogger("runner")


def sweep_id_of(sweep_dir: str) -> str:
    """One id for every job of a multirun, from its sweep directory as configured.

    Hydra resolves ``hydra.sweep.dir`` (with its timestamp) once and hands every job the same
    value, in the launching process or a worker on another machine, so no state needs passing.
    """
    return hashlib.sha1(str(sweep_dir).encode()).hexdigest()[:12]


def experiment_name(cfg: DictConfig, preset: str | None) -> str:
    return cfg.tracking.get("experiment") or preset or DEFAULT_EXPERIMENT


def listed_counts(counts: dict[str, int]) -> str:
    """``2 finished, 1 killed``: the statuses counted, without the total."""
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()) if status != "jobs")


def open_tracking_store(config: DictConfig):
    """``(uri, artifact root, client)`` of the store in force, made or found whole; ConfigError if it cannot be."""
    from .stores import resolve_uri
    from .tracking import open_store

    uri, artifact_root, source = resolve_uri(config.tracking.uri, original_cwd(config))
    return uri, artifact_root, open_store(uri, source, artifact_root=artifact_root)


class Lifecycle(Callback):
    active: Lifecycle | None = None  # the sweep this process is launching, until it ends

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A single run: refused before Hydra creates its run directory if anything is wrong."""
        try:
            check_hydra(config, multirun=False)
            check_single_run(config)
            check_tracking(config)
            if config.tracking.name == "mlflow":
                open_tracking_store(config)  # made whole (or refused) before Hydra writes anything
        except ConfigError as err:
            raise Refused(str(err)) from None
        except Exception as err:
            raise Crashed() from err

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Every job checked before the first starts; the store and experiment created once, here,
        before parallel jobs race to; runs orphaned by killed commands closed."""
        from hydra.core.global_hydra import GlobalHydra

        self.started = time.perf_counter()
        self.sweep_id = sweep_id_of(config.hydra.sweep.dir)
        loader = GlobalHydra.instance().config_loader()
        self.compositions = RememberedCompositions.install(loader)  # composed once for the checks, Hydra, workers
        try:
            check_hydra(config, multirun=True)
            jobs = check_sweep(config, loader)
            n_jobs, varying = len(jobs), varying_keys(jobs)
            if is_sampling(config):
                varying = check_search_space(config, loader)
                n_jobs = config.hydra.sweeper.get("n_trials") or n_jobs  # the jobs planned: its trials
            else:
                check_sweep_dirs(config, n_jobs)
            check_tracking(config)
            self.uri = self.parent_run = None
            if config.tracking.name == "mlflow":
                self.uri, artifact_root, self.client = open_tracking_store(config)
        except ConfigError as err:
            raise Refused(str(err)) from None
        except Exception as err:
            raise Crashed() from err
        if config.tracking.name == "mlflow":
            from .tracking import close_orphans, ensure_experiment, start_sweep_run

            preset = config.hydra.runtime.choices.get("experiment")
            self.experiment = experiment_name(config, preset)
            self.experiment_id = ensure_experiment(self.client, self.experiment, artifact_root,
                                                   description_of(config))
            close_orphans(self.client)
            overrides = [o for o in typed_overrides(config.hydra) if not o.startswith("experiment=")]
            name = f"{preset or 'sweep'}" + (f" [{' '.join(overrides)}]" if overrides else "")
            self.parent_run = start_sweep_run(self.client, self.experiment_id, name, self.sweep_id,
                                              "backprop-lab -m " + " ".join(typed_overrides(config.hydra)),
                                              description_of(config))
        self.n_jobs = n_jobs
        self.sweep_dir, self.report_mode = str(config.hydra.sweep.dir), config.tracking.report
        Lifecycle.active = self
        os.environ[LAUNCHER_PID] = str(os.getpid())  # workers stop when this process is gone
        os.environ[VARYING_KEYS] = json.dumps(varying)  # a job's run name says only what varies
        print(f"sweep {self.sweep_id}: {n_jobs} job(s) checked; directory {config.hydra.sweep.dir}", flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """The sweep's closing summary, read from its jobs' ``job.json``: counts, the jobs that
        diverged or failed, where to look.  Failed jobs make the command exit non-zero."""
        Lifecycle.active = None
        self.compositions.discard()
        records = read_job_records(Path(config.hydra.sweep.dir))
        counts: dict[str, int] = {"jobs": self.n_jobs}  # planned, as in an interrupted sweep's counts
        for record in records:
            counts[record["status"]] = counts.get(record["status"], 0) + 1
        if len(records) < self.n_jobs and not is_sampling(config):  # a job ended without its record (killed -9)
            counts["missing"] = self.n_jobs - len(records)
        listed = listed_counts(counts)
        seconds = time.perf_counter() - getattr(self, "started", time.perf_counter())
        jobs = f"{self.n_jobs} job{'s' * (self.n_jobs != 1)}"
        lines = [f"sweep {self.sweep_id}: {jobs} in {seconds:.1f}s ({listed or 'none recorded'})"]
        lines += [f"  {record['status']}: #{record['job_num']} {record['name']}"
                  + (f" - {record['detail']}" if record.get("detail") else "")
                  for record in records if record["status"] in ("diverged", "failed", "skipped")]
        print("\n".join(lines))
        if self.parent_run:
            from .tracking import finish_sweep_run

            attached = self.attach_report(self.sweep_dir) if self.report_mode == "auto" else None
            finish_sweep_run(self.client, self.parent_run, counts, "\n".join(lines) + "\n")
            self.print_links(attached)
        if config.tracking.run_figures == "auto" and records:
            preset = config.hydra.runtime.choices.get("experiment")
            python = shlex.quote(sys.executable)
            command = (f"{python} -m runner.report {shlex.quote(experiment_name(config, preset))} --run-figures "
                       f"--uri {shlex.quote(self.uri)}" if self.parent_run
                       else f"{python} -m runner.plots {shlex.quote(str(config.hydra.sweep.dir))}")
            print(f"Each run's own figures (left out of a sweep's jobs): {command}")
        if counts.get("failed"):
            raise SweepFailed(f"{counts['failed']} of {self.n_jobs} jobs failed")

    def attach_report(self, sweep_dir: str) -> Path | None:
        """The sweep's report (tables, figures, ``report.html``), written into the sweep directory and
        its parent run; None (with a warning) when it cannot be written: the sweep's runs stand anyway."""
        from .report import report

        started = time.perf_counter()
        try:
            folder = report(self.experiment, self.uri, Path(sweep_dir) / "report",
                            sweep_id=self.sweep_id, quiet=True)
        except ConfigError as err:
            log.warning("no report for this sweep: %s", err)
            return None
        except Exception as err:  # a figure that fails must not fail a finished sweep
            log.warning("the sweep's report failed (%s: %s); python -m runner.report %s draws it again",
                        type(err).__name__, err, self.experiment)
            return None
        from .tracking import show_in_note

        show_in_note(self.client, self.parent_run, "report/grad_profile.png",
                     "Gradient norm against layer, every run of this sweep (solid: step 0; dashed: the end)")
        print(f"report of the sweep ({time.perf_counter() - started:.1f}s): {folder / 'report.html'}")
        return folder

    def print_links(self, report: Path | None) -> None:
        """The command that serves the store, and the UI links that open on the answer."""
        from .tracking import chart_url, run_url, runs_url, sweep_run_ids, ui_command

        print(f"MLflow: open the UI with:  {ui_command(self.uri)}")
        print(f"  the sweep's runs:      {runs_url(self.experiment_id)}")
        if report is not None:
            print(f"  its report's figure:   {run_url(self.experiment_id, self.parent_run, 'report/grad_profile.png')}")
        run_ids = sweep_run_ids(self.client, self.experiment_id, self.sweep_id)
        if run_ids:
            print(f"  gradient profiles:     {chart_url(self.experiment_id, run_ids, 'profile/log10_grad_norm_init')}")

    def close_interrupted(self, reason: str) -> str:
        """Ctrl-C or SIGTERM stopped the sweep: the runs its stopped workers left RUNNING and its
        parent run are closed as killed now, not at the next command; returns what was done."""
        self.compositions.discard()
        if not self.parent_run:
            return "the sweep stopped"
        from .tracking import close_orphans, finish_sweep_run, sweep_job_statuses

        close_orphans(self.client, self.sweep_id, wait_seconds=5.0)
        counts = sweep_job_statuses(self.client, self.experiment_id, self.sweep_id) | {"jobs": self.n_jobs}
        listed = listed_counts(counts)
        seconds = time.perf_counter() - self.started
        summary = f"sweep {self.sweep_id}: {self.n_jobs} jobs, interrupted ({reason}) after {seconds:.1f}s ({listed})\n"
        finish_sweep_run(self.client, self.parent_run, counts, summary, status="killed")
        closed = f"the sweep's parent run {self.parent_run} and its stopped jobs' runs are closed as killed"
        if self.report_mode == "auto" and counts.get("finished", 0) + counts.get("diverged", 0):
            try:  # with what finished; a second Ctrl-C skips it
                self.attach_report(self.sweep_dir)
            except KeyboardInterrupt:
                return f"{closed}; the report was skipped"
        return closed


def close_interrupted_sweep(reason: str) -> str | None:
    """After Ctrl-C or SIGTERM in this process: close the sweep it was launching, if any (see
    ``Lifecycle.close_interrupted``); None when it launched none."""
    sweep, Lifecycle.active = Lifecycle.active, None
    return sweep.close_interrupted(reason) if sweep else None

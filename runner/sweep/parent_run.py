"""A sweep's parent run in MLflow: opened once before the first job (by the launching process or one of
joblib's workers: ``runner.sweep.parent_opening``), closed with the sweep's counts, its report attached
and the links that open on the answer printed; or closed as killed.  (Imported only with
``tracking=mlflow``: see ``runner.sweep.callback``.)"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Metric, Param

from ..config.errors import ConfigError
from ..tracking.links import is_server, profiles_link, run_url, runs_url, ui_address, ui_command
from ..tracking.runs import adopt_study_runs, close_orphans, finish_sweep_run, show_in_note, start_sweep_run, \
    sweep_job_statuses, sweep_run_ids
from ..tracking.schema import OPTUNA_STORAGE, OPTUNA_STUDY, JobStatus
from ..tracking.store import TrackedExperiment, open_experiment, open_store
from ..tracking.writer import log_image
from .parent_opening import Experiment, OpenedParent, ParentRequest

log = logging.getLogger("runner")
REPORT_FIGURE = "report/grad_profile.png"


@dataclass
class ParentRun:
    tracked: TrackedExperiment
    run_id: str
    sweep_id: str
    directory: str  # the sweep directory: the report goes into its report/
    report_mode: str  # tracking.report

    @classmethod
    def of(cls, opened: OpenedParent, sweep_id: str, directory: str, report_mode: str) -> ParentRun:
        """The parent run ``open_parent`` opened, in this process's client of its store."""
        experiment = opened.experiment
        tracked = TrackedExperiment(open_store(experiment.uri), experiment.experiment_id, experiment.name,
                                    experiment.uri)
        return cls(tracked, opened.run_id, sweep_id, directory, report_mode)

    def close(self, counts: dict[str, int], summary: str) -> None:
        """Closed with the sweep's counts and summary, its report attached first (``tracking.report=auto``)."""
        attached = self.attach_report() if self.report_mode == "auto" else None
        finish_sweep_run(self.tracked.client, self.run_id, counts, summary)
        self.print_links(attached)

    def attach_report(self) -> Path | None:
        """The sweep's report (tables, figures, ``report.html``), written into the sweep directory and this
        run; None (with a warning) when it cannot be written: the sweep's runs stand anyway."""
        started, name = time.perf_counter(), self.tracked.name
        try:
            from ..report.make import report  # here, not at the top: imported while the jobs run
            # (``parent_opening.import_while_jobs_run``)

            folder = report(name, self.tracked.uri, Path(self.directory) / "report", sweep_id=self.sweep_id,
                            quiet=True)
        except ConfigError as err:
            log.warning("no report for this sweep: %s", err)
            return None
        except Exception as err:  # a figure that fails must not fail a finished sweep
            log.warning("the sweep's report failed (%s: %s); python -m runner.report %s draws it again",
                        type(err).__name__, err, name)
            return None
        show_in_note(self.tracked.client, self.run_id, REPORT_FIGURE,
                     "Gradient norm against layer, every run of this sweep (solid: step 0; dashed: the end)")
        print(f"report of the sweep ({time.perf_counter() - started:.1f}s): {folder / 'report.html'}")
        return folder

    def adopt_study_runs(self, study: str) -> int:
        """A continued search: the runs of its study's ended trials join this sweep (``adopt_study_runs``)."""
        tracked = self.tracked
        return adopt_study_runs(tracked.client, tracked.experiment_id, study, self.sweep_id, self.run_id)

    def attach_study(self, study, url: str, folder: Path, activation: str | None, sigma_b2: float | None) -> None:
        """An Optuna search's study: its name and storage as tags, the best trial's parameters and objective,
        and the study's figures (folder ``study``, also as image records)."""
        client = self.tracked.client
        client.set_tag(self.run_id, OPTUNA_STUDY, study.study_name)
        client.set_tag(self.run_id, OPTUNA_STORAGE, url)
        if any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
            best = study.best_trial
            client.log_batch(self.run_id, params=[Param(f"best.{k}", str(v)) for k, v in best.params.items()],
                             metrics=[Metric("best/objective", best.value, int(time.time() * 1000), 0),
                                      Metric("best/trial", best.number, int(time.time() * 1000), 0)])
        from ..report.study_figures import draw_study  # here: matplotlib (see attach_report)

        for path in draw_study(study, folder, activation, sigma_b2):
            client.log_artifact(self.run_id, str(path), "study")
            log_image(client, self.run_id, path, 0)

    def print_links(self, report_folder: Path | None) -> None:
        """The command that serves the store, and the UI links that open on the answer."""
        tracked, ui = self.tracked, ui_address(self.tracked.uri)
        print(f"MLflow: the server's UI:  {ui}" if is_server(tracked.uri) else
              f"MLflow: open the UI with:  {ui_command(tracked.uri)}")
        print(f"  the sweep's runs:      {runs_url(tracked.experiment_id, ui)}")
        if report_folder is not None:
            print(f"  its report's figure:   {run_url(tracked.experiment_id, self.run_id, REPORT_FIGURE, ui)}")
        run_ids = sweep_run_ids(tracked.client, tracked.experiment_id, self.sweep_id)
        if run_ids:
            print(f"  gradient profiles:     "
                  f"{profiles_link(tracked.experiment_id, run_ids, 'profile/log10_grad_norm_init', ui)}")

    def run_figures_command(self) -> str:
        return (f"{shlex.quote(sys.executable)} -m runner.report {shlex.quote(self.tracked.name)} --run-figures "
                f"--uri {shlex.quote(self.tracked.uri)}")

    def close_interrupted(self, n_jobs: int, summary_of) -> str:
        """The runs the stopped workers left RUNNING and this run closed as killed now, not at the next
        command, with the report of what finished; ``summary_of(counts)`` is the summary's text."""
        client = self.tracked.client
        close_orphans(client, self.sweep_id, wait_seconds=5.0)
        counts = sweep_job_statuses(client, self.tracked.experiment_id, self.sweep_id) | {"jobs": n_jobs}
        finish_sweep_run(client, self.run_id, counts, summary_of(counts), status=JobStatus.killed)
        closed = f"the sweep's parent run {self.run_id} and its stopped jobs' runs are closed as killed"
        if self.report_mode == "auto" and counts.get(JobStatus.finished, 0) + counts.get(JobStatus.diverged, 0):
            try:  # with what finished; a second Ctrl-C skips it
                self.attach_report()
            except KeyboardInterrupt:
                return f"{closed}; the report was skipped"
        return closed


def prepare_experiment(request: ParentRequest) -> Experiment:
    """The store and experiment of a sweep made once, before parallel jobs race to; runs orphaned by killed
    commands closed."""
    tracked = open_experiment(request.uri, request.cwd, request.experiment, request.preset, request.experiment_note)
    close_orphans(tracked.client)
    return Experiment(tracked.uri, tracked.experiment_id, tracked.name)


def open_parent(request: ParentRequest, experiment: Experiment) -> OpenedParent:
    """The sweep's parent run opened in the prepared experiment: every job's run is its child."""
    run_id = start_sweep_run(open_store(experiment.uri), experiment.experiment_id, request.name, request.sweep_id,
                             request.command, request.description, owner_pid=request.owner_pid)
    return OpenedParent(experiment, run_id)

"""A job that is a trial of an Optuna search (``hydra/sweeper=optuna``): with a pruner, it reports its
validation loss at every logged record, so the pruner can stop it there (``StopTraining``); its run carries the
trial's study, number and state; once the run is closed, it tells the study how it ended (a search
killed in between finds the closed run when it resumes, and tells the study from it: the run is the
record).  The sweeper names the trial in the job's overrides (``hydra.sweeper.trial``, ``study_name``,
``storage``); Optuna is imported only by such jobs."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from backprop_core import Callback, StopTraining

from ..tracking.schema import OPTUNA_STATE, OPTUNA_STUDY, OPTUNA_TRIAL, JobStatus

OBJECTIVE_RECORD = "val/loss"  # the record a trial reports: the objective (final/val_loss) at every logged step


def make_pruner(settings: DictConfig):
    """The study's pruner from the sweeper's settings (``pruner``, ``warmup_steps``); Optuna's no-op one
    for ``none``."""
    import optuna  # here, as below: Optuna takes ~0.3 s to import (measured), which only a trial's job pays

    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_warmup_steps=settings.warmup_steps)
    if settings.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


@dataclass(frozen=True)
class TrialOfSearch:
    study_name: str
    storage: str
    number: int

    @classmethod
    def current(cls) -> TrialOfSearch | None:
        """The trial this job runs, when an Optuna search launched it."""
        if not HydraConfig.initialized():
            return None
        sweeper = HydraConfig.get().sweeper
        if sweeper.get("trial") is None:
            return None
        return cls(sweeper.study_name, sweeper.storage, int(sweeper.trial))

    @property
    def tags(self) -> dict[str, str]:
        return {OPTUNA_STUDY: self.study_name, OPTUNA_TRIAL: str(self.number)}

    @functools.cached_property
    def trial(self):
        """The study's trial, loaded once per job (for the pruner's reports and the final tell)."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        settings = HydraConfig.get().sweeper
        storage = optuna.storages.RDBStorage(self.storage)
        study = optuna.load_study(study_name=self.study_name, storage=storage, pruner=make_pruner(settings))
        trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(self.study_name),
                                                                   self.number)
        return optuna.trial.Trial(study, trial_id)

    def reporters(self) -> list[Callback]:
        """The fit-loop callback that reports to the pruner; none without a pruner (a report is a write to
        the study's database, ~2 ms on sqlite: a thousand records would add seconds to a trial)."""
        pruner = HydraConfig.get().sweeper.pruner
        return [] if pruner == "none" else [PruningReporter(self.trial, pruner)]

    def state_tag(self, status: JobStatus, objective: float) -> dict[str, str]:
        """The run's tag of the trial's state (none for a killed job: its trial stays RUNNING)."""
        return {} if status == JobStatus.killed else {OPTUNA_STATE: state_of(status, objective)}

    def tell(self, status: JobStatus, objective: float) -> None:
        """Tell the study how the trial ended (``state_of``).  A killed job tells nothing: its trial stays
        RUNNING, and a resumed search runs it again."""
        if status != JobStatus.killed:
            tell(self.trial.study, self.number, status, objective)


def tell(study, number: int, status: JobStatus, objective: float) -> None:
    """Trial ``number`` of ``study`` ended with ``status`` and ``objective`` (its state: ``state_of``)."""
    import optuna

    state = state_of(status, objective)
    study.tell(number, objective if state == "COMPLETE" else None, state=optuna.trial.TrialState[state],
               skip_if_finished=True)


def state_of(status: JobStatus, objective: float) -> str:
    """The trial's state for a job's outcome: COMPLETE with a finite objective; PRUNED when the pruner
    stopped it or it diverged (or finished in NaN with the guard off): hopeless; FAIL when it failed."""
    if status in (JobStatus.finished, JobStatus.skipped) and math.isfinite(objective):
        return "COMPLETE"
    if status in (JobStatus.finished, JobStatus.skipped, JobStatus.pruned, JobStatus.diverged):
        return "PRUNED"
    return "FAIL"


class PruningReporter(Callback):
    """``trial.report(val/loss, step)`` at every logged record; the run stops where the pruner says so."""

    def __init__(self, trial, pruner: str) -> None:
        self.trial, self.pruner = trial, pruner

    def on_step(self, record: dict[str, float]) -> None:
        value = record.get(OBJECTIVE_RECORD)
        if value is None or not math.isfinite(value):  # a diverging step: the run's guard ends it
            return
        step = int(record["step"])
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise StopTraining(f"pruned by the {self.pruner} pruner at step {step} (val loss {value:.4g})")

"""A Bayesian search on Optuna's ask/tell interface (``hydra/sweeper=optuna``; Hydra's face of it is
``hydra_plugins.backprop_lab_sweepers``).

The search asks the study for a batch of trials (``n_jobs`` at once) and runs them as jobs through
Hydra's launcher (basic, joblib, Ray, submitit); each job tells the study how it ended
(``runner.run.trial``): COMPLETE with its final validation loss, PRUNED when the pruner stopped it or
it diverged, FAIL when it failed.
The study lives in a database beside the tracking store (``runner.sweep.study``), so a killed search
continues with ``resume=true``: the trials it left running are run again under their own numbers and
parameters, then new ones until the study holds ``n_trials`` ended trials.  The search space uses the
grammar of Hydra's Optuna sweeper (``choice``, ``interval``, ``range``, ``tag(log, ...)``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

import optuna

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep, Transformer
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus as HydraJobStatus
from omegaconf import DictConfig, OmegaConf

from ..run.job import JobResult, Outcome
from ..run.trial import tell
from ..tracking.schema import STATUS, JobStatus
from . import closing
from .study import Study

class Search:
    def __init__(self, hydra_context, task_function, config: DictConfig) -> None:
        self.config = config
        self.loader = hydra_context.config_loader
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                               task_function=task_function, config=config)
        self.job_num = 0

    def run(self, arguments: list[str]) -> list:
        settings, sweep = self.config.hydra.sweeper, closing.current()
        study = Study.open(self.config)
        fixed, space = split(self.loader, _params(settings) + list(arguments))
        interrupted = [t for t in study.interrupted() if not _told_from_its_run(study, t.number, sweep)]
        ended = study.ended()
        new = max(0, settings.n_trials - ended - len(interrupted))
        if sweep is not None:
            sweep.n_jobs = len(interrupted) + new  # the jobs this command runs
        joined = sweep.parent.adopt_study_runs(study.name) if ended and sweep is not None and sweep.parent else 0
        print(f"study {study.name!r} in {study.url}: {ended} trial{'s' * (ended != 1)} ended"
              + (f" ({_joining(joined, ended)} this sweep)" if joined else "")
              + (f", {len(interrupted)} interrupted to run again" if interrupted else "") + f", {new} to run",
              flush=True)
        per_batch = _trials_at_once(self.config)
        returns = []
        while interrupted or new:
            batch = interrupted[:per_batch]
            interrupted = interrupted[per_batch:]
            asked = min(per_batch - len(batch), new)
            batch += [study.study.ask(space) for _ in range(asked)]
            new -= asked
            for trial in batch:
                study.claim(trial.number)
            jobs = [fixed + _overrides(study, trial.number, trial.params) for trial in batch]
            done = self.launcher.launch(jobs, initial_job_idx=self.job_num)
            self.job_num += len(jobs)
            for trial, job_return in zip(batch, done):
                _tell(study, trial.number, job_return)
            returns.append(done)
        _close(study, sweep, self.config)
        return returns


def _joining(joined: int, ended: int) -> str:
    """``its run joins``, ``their runs join``, ``2 of their runs join``: the runs of a continued study's ended
    trials that join this sweep (a trial that failed before its job made a run has none)."""
    if joined == ended:
        return "its run joins" if ended == 1 else "their runs join"
    return f"{joined} of their runs join{'s' * (joined == 1)}"


def _params(settings: DictConfig) -> list[str]:
    params = OmegaConf.to_container(settings, resolve=False).get("params") or {}
    return [f"{key}={value}" for key, value in params.items()]


def split(loader, overrides: list[str]) -> tuple[list[str], dict]:
    """The fixed overrides, and the search space: key -> Optuna distribution (a key given twice: the
    command line's, which comes last, wins)."""
    fixed, space = {}, {}
    for override in OverridesParser.create(config_loader=loader).parse_overrides(overrides):
        key = override.get_key_element()
        fixed.pop(key, None), space.pop(key, None)
        if override.is_sweep_override():
            space[key] = distribution(override)
        else:
            fixed[key] = override.input_line
    return list(fixed.values()), space


def distribution(override):
    """The Optuna distribution of a sweep override, as Hydra's Optuna sweeper reads them: ``choice`` is
    categorical, ``range(a, b, s)`` takes a..b (b included) by s, ``interval(a, b)`` is uniform (of
    integers when both bounds are: ``int(interval(...))``), ``tag(log, ...)`` log-uniform."""
    value = override.value()
    log_scale = "log" in value.tags
    if isinstance(value, ChoiceSweep):
        return optuna.distributions.CategoricalDistribution(list(override.sweep_iterator()))
    if isinstance(value, RangeSweep):
        if all(isinstance(x, int) for x in (value.start, value.stop, value.step)):
            return optuna.distributions.IntDistribution(value.start, value.stop, step=value.step, log=log_scale)
        return optuna.distributions.FloatDistribution(value.start, value.stop, step=value.step, log=log_scale)
    assert isinstance(value, IntervalSweep), value
    if isinstance(value.start, int) and isinstance(value.end, int):
        return optuna.distributions.IntDistribution(value.start, value.end, log=log_scale)
    return optuna.distributions.FloatDistribution(value.start, value.end, log=log_scale)


def _overrides(study: Study, number: int, params: dict) -> list[str]:
    """A trial's job: its parameters, and the trial it runs (read by ``runner.run.trial`` in the job)."""
    return [f"{key}={Transformer.encode(value)}" for key, value in params.items()] + [
        f"hydra.sweeper.study_name={_quoted(study.name)}", f"hydra.sweeper.storage={_quoted(study.url)}",
        f"hydra.sweeper.trial={number}"]


def _quoted(text: str) -> str:
    return f"'{text}'" if "'" not in text else f'"{text}"'


def _trials_at_once(config: DictConfig) -> int:
    """``hydra.sweeper.n_jobs``, else as many as the joblib launcher runs at once, else 1."""
    if config.hydra.sweeper.n_jobs:
        return config.hydra.sweeper.n_jobs
    workers = config.hydra.launcher.get("n_jobs") if "Joblib" in config.hydra.launcher.get("_target_", "") else 1
    return (os.cpu_count() or 1) if workers == -1 else max(1, workers or 1)


def _told_from_its_run(study: Study, number: int, sweep) -> bool:
    """An interrupted trial whose run did end (the search was killed after its job closed the run, before
    the job told the study) is told now from that run, not run again."""
    if sweep is None or sweep.parent is None:  # tracking=none: no run to tell from, the trial runs again
        return False
    # imported here: MLflow takes ~1.2 s to import (measured), which a search with tracking=none never pays
    from ..tracking.runs import trial_run

    tracked = sweep.parent.tracked
    run = trial_run(tracked.client, tracked.experiment_id, study.name, number)
    if run is None:
        return False
    status = JobStatus(run.data.tags[STATUS])
    tell(study.study, number, status, Outcome(status, summary=run.data.metrics).objective)
    return True


def _tell(study: Study, number: int, job_return) -> None:
    """A trial's job tells the study how it ended (``runner.run.trial``); one that could not (it failed
    before it trained, or Hydra could not run it) is told FAIL here."""
    result = job_return.return_value if job_return.status == HydraJobStatus.COMPLETED else None
    if not isinstance(result, JobResult) or result.status != JobStatus.killed:
        study.study.tell(number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)


def _close(study: Study, sweep, config: DictConfig) -> None:
    """The best trial, into the parent run with the study's figures; the dashboard's command."""
    complete = study.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if complete:
        best = study.study.best_trial
        shown = " ".join(f"{key}={Transformer.encode(value)}" for key, value in best.params.items())
        print(f"best of {len(study.study.trials)} trials: #{best.number} {shown}: objective {best.value:.6g}")
    else:
        print(f"no trial of the study {study.name!r} completed")
    if sweep is not None and sweep.parent is not None:
        init = config.get("init") or {}
        critical = init.get("name") == "mean_field" and "sigma_b2" in init
        sweep.parent.attach_study(study.study, study.url, Path(sweep.directory) / "study",
                                  config.activation.name if critical else None, init.get("sigma_b2"))
    print(f"Optuna's dashboard on the study:  {dashboard_command(study.url)}")


def dashboard_command(url: str) -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "optuna-dashboard")
    command = beside if os.path.exists(beside) else shutil.which("optuna-dashboard") or "optuna-dashboard"
    return f"{shlex.quote(command)} {shlex.quote(url)}"

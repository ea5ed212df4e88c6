"""The steps of one job besides the fit: opening its MLflow run, the checks at the initial weights
(gradient check, Jacobian spectrum), the files it leaves, theory beside measurement, and closing."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from backprop_core import Callback, DistributionRecorder, FitResult, gradient_check
from backprop_core.theory import jacobian, singular_values, spectrum

from ..config.recorded import description_of, recorded_yaml
from ..processes import imports_unscanned
from . import theory_check
from .build import BuiltRun
from .job import Job, Outcome, record_job
from .progress import ProgressBar
from .records import HistoryCsv

log = logging.getLogger("runner")
Artifacts = list[tuple[Path, str | None]]  # a file, and the artifact folder it goes to (None: the top)


def open_tracker(cfg: DictConfig, job: Job):
    """The run's MLflow writer (``MlflowTracker``), on the experiment its sweep or command opened; None for
    ``tracking=none``."""
    if cfg.tracking.name != "mlflow":
        return None
    # imported here: MLflow takes ~1.2 s to import (measured), which tracking=none never pays
    with imports_unscanned():
        from ..tracking.runs import close_orphans, sweep_run
        from ..tracking.store import open_experiment
        from ..tracking.writer import MlflowTracker

    # the experiment's note: its preset's description (the default config's describes one composition of it)
    tracked = open_experiment(cfg.tracking.uri, job.cwd, cfg.tracking.experiment, job.preset,
                              description_of(cfg) if job.preset else None)
    tracker = MlflowTracker(tracked.client, tracked.experiment_id, tracked.name, cfg.tracking.detail)
    log.debug("tracking to %s, experiment %r (id %s)", tracked.uri, tracked.name, tracked.experiment_id)
    if not job.multirun:  # a sweep closes orphans once, in its launching process
        close_orphans(tracked.client)
    elif parent := sweep_run(tracked.client, tracked.experiment_id, job.sweep_id):
        tracker.parent_run_id = parent.info.run_id
    return tracker


@dataclass
class Recording:
    """What a job records besides MLflow's stream: the history file, the distributions (full detail),
    its figures; and, once trained, its profiles, artifacts and theory tags."""

    history: HistoryCsv
    distributions: DistributionRecorder | None
    figures: bool
    callbacks: list[Callback]
    profiles: dict[str, list[float]] = field(default_factory=dict)
    artifacts: Artifacts = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, cfg: DictConfig, job: Job) -> Recording:
        history = HistoryCsv(job.out_dir / "history.csv")
        distributions = None
        if cfg.tracking.detail == "full":  # histogram_every null: the recorder's own cadence
            every = cfg.tracking.histogram_every
            distributions = DistributionRecorder() if every is None else DistributionRecorder(every)
        # the recorder first: its per-layer percentiles join the record before the CSV and MLflow see it
        callbacks = ([distributions] if distributions else []) + [
            ProgressBar(job.name, disable=True if job.multirun else None), history]
        return cls(history, distributions, draws_figures(cfg, job), callbacks)


def draws_figures(cfg: DictConfig, job: Job) -> bool:
    """A run's own figures cost more than a short run's training (about 0.6 s of matplotlib): a single
    run draws them, a sweep's job only with ``tracking.run_figures=always``."""
    return cfg.tracking.run_figures == "always" or (cfg.tracking.run_figures == "auto" and not job.multirun)


def checks_at_init(cfg: DictConfig, built: BuiltRun, out_dir: Path) -> dict[str, float]:
    """The gradient check and the Jacobian's spectrum at the initial weights, where asked for."""
    metrics = {}
    if cfg.trainer.check_gradients:
        metrics |= _gradient_check(built)
    if cfg.trainer.jacobian_samples:
        metrics |= _jacobian_spectrum(built, cfg.trainer.jacobian_samples, out_dir / "jacobian.npz")
    return metrics


def _gradient_check(built: BuiltRun) -> dict[str, float]:
    """Back-propagated against central-difference gradients at the initial weights (64 samples at most)."""
    result = gradient_check(built.net, built.data.X_train[:64], built.Y_train[:64], built.loss)
    exact_zero = [k for k, e in result.abs_errors.items() if e < 1e-9 and result.errors[k] >= 1e-6]
    log.info("gradient check at the initial weights: max relative error %.2e (%s: rtol 1e-6, atol 1e-9)%s",
             result.max_error_above(1e-9), "passed" if result.passed() else "FAILED",
             f"; {', '.join(exact_zero)}: gradient 0, differences at round-off" if exact_zero else "")
    metrics = {f"gradcheck/{key.replace('/', '_')}": error for key, error in result.errors.items()}
    return metrics | {"gradcheck/max_rel_error": result.max_error_above(1e-9)}


def _jacobian_spectrum(built: BuiltRun, n_samples: int, path: Path) -> dict[str, float]:
    """The singular values of the input-output Jacobian (input to the last hidden layer) at the
    initial weights, on the first ``n_samples`` training samples: ``jacobian/*`` metrics, and every
    singular value in ``jacobian.npz`` (the report draws their density)."""
    values = singular_values(jacobian(built.net, built.data.X_train[:n_samples]))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, singular_values=values)
    return {f"jacobian/{key}": value for key, value in spectrum(values).items()}


def write_artifacts(cfg: DictConfig, job: Job, recording: Recording) -> Artifacts:
    """``config.yaml`` beside the streamed ``history.csv``, with full detail ``distributions.npz``,
    the Jacobian's ``jacobian.npz``, and the run's own figures where it draws them."""
    out_dir = job.out_dir
    (out_dir / "config.yaml").write_text(recorded_yaml(cfg))
    artifacts = [(out_dir / "config.yaml", None), (recording.history.path, None)]
    if recording.distributions is not None and recording.distributions.steps:
        recording.distributions.save(out_dir / "distributions.npz")
        artifacts.append((out_dir / "distributions.npz", None))
    if cfg.trainer.jacobian_samples:
        artifacts.append((out_dir / "jacobian.npz", None))
    if recording.figures:
        # imported here: matplotlib takes ~0.8 s to import (measured), which a sweep's jobs never pay
        with imports_unscanned():
            from ..figures.run_figures import draw_run_figures

        artifacts += [(path, "plots") for path in draw_run_figures(out_dir, job.name)]
    return artifacts


def add_theory(prediction: theory_check.RunTheory | None, result: FitResult, n_layers: int, out_dir: Path,
               outcome: Outcome, recording: Recording) -> None:
    """The mean-field prediction beside the step-0 measurement: metrics, profiles, tags, ``theory.csv``;
    without a prediction, the measured slope and ``gradient_flow`` tag alone."""
    if not result.history:
        return
    if prediction is None:
        metrics, recording.tags = theory_check.measured_flow(result.history[0], n_layers)
        outcome.summary |= metrics
        return
    metrics, profiles, recording.tags = theory_check.compare(prediction, result.history[0], n_layers)
    outcome.summary |= metrics
    recording.profiles |= profiles
    table = theory_check.write_table(prediction, result.history[0], n_layers, out_dir / "theory.csv")
    recording.artifacts.append((table, None))


def close(tracker, job: Job, outcome: Outcome, recording: Recording) -> None:
    """Close the history file and the MLflow run with the outcome; once MLflow holds the run's files,
    the run directory keeps no second copy.  A killed job still leaves its ``job.json``."""
    recording.history.close()
    if tracker and tracker.run_id:  # (no run when the command was stopped before its run was made)
        tracker.finish(outcome.status, outcome.summary, recording.artifacts, outcome.detail or None,
                       recording.profiles, recording.tags)
        outcome.run_id = tracker.run_id
        if outcome.status.has_result:
            _remove_local_copies(recording.artifacts)
    if outcome.status == "killed":
        record_job(job, outcome)


def _remove_local_copies(artifacts: Artifacts) -> None:
    for path, _ in artifacts:
        path.unlink(missing_ok=True)
    for folder in {path.parent for path, folder in artifacts if folder == "plots"}:
        shutil.rmtree(folder, ignore_errors=True)

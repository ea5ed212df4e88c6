"""One job: the composition built once, trained as a short list of named steps, recorded in MLflow
(or not, with ``tracking=none``) and on disk; returns the objective a sweeper minimises."""

from __future__ import annotations

import logging
import math
import sys
import time
import traceback

from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from backprop_core import fit

from ..config.errors import PROG, ConfigError, Refused
from ..config.recorded import config_hash, description_of
from ..processes import (CLOSED_AS_KILLED, Interrupted, ctrl_c_in_the_job, interrupted_by_sigterm,
                         redeliver_dropped_interruptions, stop_with_launcher)
from ..tracking.schema import (CONFIG_HASH, JOB_NUM, KIND, MAX_TAG_VALUE, OVERRIDES, PARENT_RUN, PRESET,
                               PREVIOUS_SWEEP_ID, RUNNING_STATISTICS, STATUS, SWEEP_ID, VALIDATION, JobStatus)
from . import steps, theory_check
from .build import BuiltRun, build_once
from .console import log_only
from .job import Job, JobResult, Outcome, record_job
from .metrics import params_of, profile_metrics, summary_metrics, swept_values
from .summary import log_summary
from .threads import blas_threads
from .trial import TrialOfSearch

log = logging.getLogger("runner")


def train(cfg: DictConfig) -> JobResult:
    """Train the composition ``cfg``; returns how it ended and its objective for a sweeper (the final
    validation loss, inf unless it finished)."""
    job = Job.current()
    log.info("run directory: %s", job.out_dir, extra=log_only(job.multirun))
    # never inherited: set in every job
    with threadpool_limits(limits=1, user_api="blas"), interrupted_by_sigterm(), ctrl_c_in_the_job():
        if job.multirun:  # in a worker process too: it stops with its sweep, and drops no SIGTERM
            stop_with_launcher()
            sys.unraisablehook = redeliver_dropped_interruptions
        built = _build(cfg, job)
        if built is None:
            return JobResult(JobStatus.failed, math.inf)
        tracker = _open_tracker(cfg, job)
        trial = TrialOfSearch.current() if job.multirun else None
        reused = None if trial else _reusable_run(cfg, job, tracker)  # a search's resume continues its study
        threads = blas_threads(cfg.trainer.threads, built.net.sizes,
                               built.trainer.batch_size or len(built.data.X_train), job.alone)
        log.debug("BLAS threads: %d", threads)
        with threadpool_limits(limits=threads, user_api="blas"):
            outcome = reused or _train_and_record(cfg, built, job, tracker, trial)
    record_job(job, outcome)
    log_summary(job, outcome, tracker, built.net.n_layers, len(built.data.X_val))
    return outcome.returned


def _open_tracker(cfg: DictConfig, job: Job):
    """The run's tracker; a store that refuses the experiment (a name differing from one of its own only
    in case, checked as a server's store is opened) ends a single run with the one line of a user error."""
    try:
        return steps.open_tracker(cfg, job)
    except ConfigError as err:
        if job.multirun:  # the sweep's own process opened the experiment first: not reached
            raise
        raise Refused(str(err)) from None


def _build(cfg: DictConfig, job: Job) -> BuiltRun | None:
    """The run, built once and checked.  A bad config is refused in a single run; in a sweep (where a
    sweeper such as Optuna drew it) the job is recorded as failed and the sweep goes on."""
    try:
        built = build_once(cfg)
    except ConfigError as err:
        if not job.multirun:
            raise Refused(str(err)) from None
        log.error("%s: error: %s", PROG, err)
        record_job(job, Outcome(JobStatus.failed, detail=str(err)))
        return None
    log.debug("built %r: %d parameters, %d training and %d validation samples, %s",
              built.net, built.net.n_params, len(built.data.X_train), len(built.data.X_val), built.trainer)
    if (built.trainer.batch_size or 0) > len(built.data.X_train):
        log.warning("trainer.batch_size=%d exceeds the %d training samples: every step is full batch",
                    built.trainer.batch_size, len(built.data.X_train))
    if built.loss.name == "cross_entropy" and built.net.output_activation.name == "sigmoid":
        # allowed (the engine's gradients are exact for it, and it shows why the pair fails), but no fit
        # of it means anything: a new user meets it as a loss at 0 beside accuracy at chance
        log.warning("loss=cross_entropy after loss.output_activation=sigmoid scores only the outputs of each "
                    "sample's own class: every output at 1 brings it to 0, whatever the class (softmax makes "
                    "the outputs compete; loss=bce scores sigmoid outputs)")
    return built


def _reusable_run(cfg: DictConfig, job: Job, tracker) -> Outcome | None:
    """With ``resume=true``, a finished or diverged run of the same configuration is reused: it
    joins this sweep (its ``sweep_id`` and ``job_num`` are updated) and nothing is trained.  (Not for a
    search's trial: there ``resume=true`` continues the study, and each trial has a run of its own.)"""
    if not cfg.resume or tracker is None:  # the checks refuse resume=true with tracking=none
        return None
    from ..tracking.runs import reusable_run  # imported here: MLflow (~1.2 s to import) only with tracking=mlflow

    run = reusable_run(tracker.client, tracker.experiment_id, config_hash(cfg))
    if run is None:
        return None
    if job.sweep_id and run.data.tags.get(SWEEP_ID) != job.sweep_id:
        adopted = {PREVIOUS_SWEEP_ID: run.data.tags.get(SWEEP_ID, ""), SWEEP_ID: job.sweep_id, JOB_NUM: str(job.num)}
        if tracker.parent_run_id:
            adopted[PARENT_RUN] = tracker.parent_run_id
        for key, value in adopted.items():
            tracker.client.set_tag(run.info.run_id, key, value)
    summary = {k: v for k, v in run.data.metrics.items() if k.startswith("final/")}
    return Outcome(JobStatus.skipped, summary=summary, run_id=run.info.run_id,
                   detail=f"reuses run {run.info.run_id} ({run.data.tags.get(STATUS)})")


def _run_tags(cfg: DictConfig, job: Job, tracker, trial: TrialOfSearch | None) -> dict[str, str]:
    tags = {KIND: "job", JOB_NUM: str(job.num), OVERRIDES: " ".join(job.overrides)[:MAX_TAG_VALUE],
            STATUS: JobStatus.running, PRESET: job.preset or "none", CONFIG_HASH: config_hash(cfg)}
    if cfg.architecture.get("norm") == "batch":
        tags[VALIDATION] = RUNNING_STATISTICS
    if trial:
        tags |= trial.tags
    if job.sweep_id:
        tags[SWEEP_ID] = job.sweep_id
        if tracker.parent_run_id:
            tags[PARENT_RUN] = tracker.parent_run_id
    return tags


def _train_and_record(cfg: DictConfig, built: BuiltRun, job: Job, tracker, trial: TrialOfSearch | None) -> Outcome:
    """The run's steps, with the history streamed to ``history.csv``; whatever happens, the MLflow run
    is closed: finished, diverged, failed (with its error) or killed."""
    outcome = Outcome(JobStatus.failed, summary=swept_values(job.values))
    recording = steps.Recording.of(cfg, job)
    started = time.perf_counter()
    try:  # from the run's start: a Ctrl-C or SIGTERM anywhere after it closes the run as killed
        if tracker:
            tracker.start(job.name, params_of(cfg, job.choices), _run_tags(cfg, job, tracker, trial),
                          description_of(cfg, job.values, job.preset_sweep))
        outcome.summary |= steps.checks_at_init(cfg, built, job.out_dir)
        prediction = theory_check.run_theory(built)  # before the fit: it reads the initial weights
        callbacks = recording.callbacks + ([tracker] if tracker else []) + (trial.reporters() if trial else [])
        result = fit(built.net, built.loss, built.optimizer, built.data.X_train, built.Y_train,
                     trainer=built.trainer, rng=built.shuffle_rng, validation=(built.data.X_val, built.Y_val),
                     classification=built.data.classification,
                     callbacks=callbacks, keep_history="ends")
        outcome.seconds, outcome.result = time.perf_counter() - started, result
        outcome.summary |= summary_metrics(result, built.net.n_layers)
        recording.profiles = profile_metrics(result, built.net.n_layers, len(built.net.blocks)) if result.history else {}
        recording.artifacts = steps.write_artifacts(cfg, job, recording)
        steps.add_theory(prediction, result, built.net.n_layers, job.out_dir, outcome, recording)
        outcome.status = JobStatus.diverged if result.diverged else JobStatus.pruned if result.stopped \
            else JobStatus.finished
        outcome.detail = result.stop_reason
    except (KeyboardInterrupt, Interrupted) as err:
        outcome.status = JobStatus.killed
        if not tracker or tracker.run_id:  # what the command says as it exits (below, the run is closed so)
            err.add_note(CLOSED_AS_KILLED)
        raise
    except Exception as err:
        outcome.detail = f"{type(err).__name__}: {err}"
        if not job.multirun:
            raise
        log.error("%s: job failed: %s\n%s", job.name, outcome.detail, traceback.format_exc())
    finally:
        if trial:
            recording.tags |= trial.state_tag(outcome.status, outcome.objective)
        steps.close(tracker, job, outcome, recording)
        if trial:  # once the run is closed: see runner.run.trial
            trial.tell(outcome.status, outcome.objective)
    return outcome

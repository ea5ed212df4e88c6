"""The line a job ends with: what it did, its numbers (all from its history), and where to look."""

from __future__ import annotations

import logging
import math

from ..tracking.links import is_server, run_url, ui_address, ui_command
from ..tracking.schema import JobStatus
from .console import log_only
from .job import Job, Outcome

log = logging.getLogger("runner")


def log_summary(job: Job, outcome: Outcome, tracker, n_layers: int, n_val: int) -> None:
    """One line whose numbers all stand in the history (the closing record's), and where to look."""
    result = outcome.result
    if outcome.status == JobStatus.skipped:
        log.info("%s: skipped (resume=true): %s", job.name, outcome.detail)
        return
    if result is None:
        return
    log.info("; ".join(_parts(job, outcome, n_layers, n_val)))
    where = log_only(job.multirun)  # a sweep's closing lines say where all its jobs' records are
    if tracker and is_server(tracker.uri):  # the server shows it: no command to run
        log.info("MLflow: experiment %r, run %s, on the server %s", tracker.experiment, tracker.run_id, tracker.uri,
                 extra=where)
        if not job.multirun:
            log.info("  the run's page:  %s", run_url(tracker.experiment_id, tracker.run_id, ui=ui_address(tracker.uri)))
    elif tracker:
        log.info("MLflow: experiment %r, run %s. Open it with:  %s", tracker.experiment, tracker.run_id,
                 ui_command(tracker.uri), extra=where)
        if not job.multirun:
            log.info("  then the run's page:  %s", run_url(tracker.experiment_id, tracker.run_id))
    else:
        log.info("history, config%s: %s", " and figures" if (job.out_dir / "plots").exists() else "", job.out_dir,
                 extra=where)


def _parts(job: Job, outcome: Outcome, n_layers: int, n_val: int) -> list[str]:
    summary, result = outcome.summary or {}, outcome.result
    if result.diverged:
        head = f"{job.name}: diverged at step {result.diverged_at_step} (a non-finite loss or gradient)"
    elif result.stopped:
        head = f"{job.name}: {result.stop_reason}"
    else:
        head = f"{job.name}: finished {result.steps} update{'s' * (result.steps != 1)}"
    parts = [f"{head} in {outcome.seconds:.1f}s"]
    final = [f"{label} {summary[key]:.4g}" for key, label in (
        ("final/train_loss", "train loss"), ("final/val_loss", "val loss")) if key in summary]
    if "final/val_accuracy" in summary:
        final.append(f"val accuracy {summary['final/val_accuracy']:.4g} (of {n_val})")
    if final and not (result.diverged or result.stopped):
        parts.append(f"at step {result.steps}: " + ", ".join(final))
    if "grad_ratio_first_last" in summary:
        ratio = summary["grad_ratio_first_last"]
        undefined = "not finite" if result.diverged else f"undefined: |grad l{n_layers}| is 0"
        parts.append(f"|grad l1| / |grad l{n_layers}| at step 0 = {undefined if math.isnan(ratio) else f'{ratio:.3g}'}")
    return parts

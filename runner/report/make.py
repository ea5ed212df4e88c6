"""Compare the runs of one experiment: a summary table and figures, from MLflow.

    python -m runner.report vanishing_depth                 # the latest sweep of that experiment
    python -m runner.report vanishing_depth --all           # every run in it
    python -m runner.report glorot2010 --uri http://127.0.0.1:5000
    python -m runner.report vanishing_depth --run-figures   # and each run's own plots/*.png, drawn now
    python -m runner.report --folder outputs/multirun/…     # a sweep run with tracking=none, from its folder

Writes ``outputs/reports/<experiment>/``: ``summary.csv``, ``summary.md``, ``pivot_*.csv``, ``pivots.md``,
``report.html`` (everything on one self-contained page), ``grad_profile.png``
(gradient norm vs layer at the first and the last logged step, one line per run), ``loss_curves.png``
and ``grad_heatmaps.png`` (log10 gradient norm over steps x layers, one panel per run, up to 64 runs),
replacing an earlier report's; and logs them to MLflow: into the sweep's parent run (folder ``report``)
when the report covers one sweep, else as a run named ``report`` (tag ``kind=report``) in the same experiment.
Histories are read in bulk: per run one artifact listing and one download per file it has, never one
request per point.  A sweep no store holds (``tracking=none``) is read from its folder
(``runner.report.folder``), its report written into the folder's ``report/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..processes import heap_frozen
from ..tracking.schema import DEFAULT_EXPERIMENT
from ..tracking.store import default_experiment, open_store
from ..tracking.stores import check_store_exists, path_part, resolve_uri
from .load import load_artifacts, load_runs
from .tables import markdown
from .to_mlflow import image_logger, log_missing_run_figures, log_report, parent_run_of
from .write import write_report

USAGE = __doc__


def report(experiment: str, uri: str | None = None, out: Path | None = None, every_sweep: bool = False,
           log_to_mlflow: bool = True, run_figures: bool = False, sweep_id: str | None = None,
           quiet: bool = False) -> Path:
    """Write the report of ``experiment``'s runs (sweep ``sweep_id``, or the latest) into ``out``; log it
    to MLflow (the sweep's parent run, its figures also as image records); returns the folder."""
    with heap_frozen():  # the process's objects (a sweep's: MLflow, Hydra) are not walked again and again
        return _report(experiment, uri, out, every_sweep, log_to_mlflow, run_figures, sweep_id, quiet)


def _report(experiment: str, uri: str | None, out: Path | None, every_sweep: bool, log_to_mlflow: bool,
            run_figures: bool, sweep_id: str | None, quiet: bool) -> Path:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per downloaded file is noise
    given = uri
    uri, _, source = resolve_uri(uri)
    where = f"--uri={given}" if given else source if os.environ.get("MLFLOW_TRACKING_URI") else "no --uri"
    check_store_exists(uri, where)  # a report reads a store, never creates one
    client = open_store(uri, where, create=False)  # under the store's lock, like every command
    if experiment == DEFAULT_EXPERIMENT:  # the runs without a preset: MLflow's own 'Default' in a server's store
        experiment = default_experiment(client)
    runs = load_runs(client, experiment, every_sweep, sweep_id)
    if run_figures:
        drawn, had = log_missing_run_figures(client, runs)
        print(f"report: drew the own figures of {drawn} of {len(runs)} runs" + (f"; {had} had theirs already" if had else ""))
    artifacts = load_artifacts(client, runs)
    folder = out or Path("outputs") / "reports" / path_part(experiment)
    parent = parent_run_of(client, experiment, runs) if log_to_mlflow else None
    table, files = write_report(folder, experiment, runs, artifacts, on_drawn=image_logger(client, parent))
    if log_to_mlflow:
        log_report(client, experiment, runs, files, parent)
    if not quiet:
        print(f"report: {len(runs)} runs of {experiment!r} -> {folder}")
        print(markdown(table))
    return folder

"""What the report writes into MLflow: itself (into the sweep's parent run, or a run of its own), and
the runs' own figures where their jobs left them out.  Nothing else: the report only reads runs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from ..figures.run_figures import draw_run_figures
from ..tracking.runs import sweep_run
from ..tracking.schema import KIND, JobStatus
from ..tracking.writer import log_image


def log_missing_run_figures(client: MlflowClient, runs: pd.DataFrame) -> tuple[int, int]:
    """Each run's own figures (``plots/*.png`` and their images) where its job left them out, as a sweep's
    jobs do unless ``tracking.run_figures=always``: drawn from the run's ``history.csv`` (and
    ``distributions.npz``) and logged to the run.  Returns how many runs got them, and how many had them."""
    drawn = had = 0
    with tempfile.TemporaryDirectory() as tmp:
        for run_id, name in zip(runs["run_id"], runs["run_name"]):
            files = {f.path for f in client.list_artifacts(run_id)}
            had += "plots" in files
            if "plots" in files or "history.csv" not in files:
                continue
            folder = Path(tmp) / run_id
            for file in files & {"history.csv", "distributions.npz"}:
                client.download_artifacts(run_id, file, str(folder))
            paths = draw_run_figures(folder, name)
            last_step = int(pd.read_csv(folder / "history.csv", usecols=["step"])["step"].iloc[-1]) if paths else 0
            for path in paths:
                client.log_artifact(run_id, str(path), "plots")
                log_image(client, run_id, path, last_step)
            drawn += bool(paths)
    return drawn, had


def parent_run_of(client: MlflowClient, experiment: str, runs: pd.DataFrame) -> str | None:
    """The sweep's parent run when the report covers one sweep, else None."""
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    sweeps = runs["sweep_id"].dropna().unique()
    if len(sweeps) != 1 or not runs["sweep_id"].notna().all():
        return None
    parent = sweep_run(client, experiment_id, sweeps[0])
    return parent.info.run_id if parent is not None else None


def image_logger(client: MlflowClient, parent: str | None):
    """What to do with each figure as it is drawn: with a parent run, log it as an image record (the chart
    view's image grid shows them), while the other figures are still being drawn; its thumbnail made from
    the figure's preview, when its process sent one."""
    if parent is None:
        return None
    return lambda path, preview: log_image(client, parent, path, 0, preview)


def log_report(client: MlflowClient, experiment: str, runs: pd.DataFrame, files: list[Path],
               parent: str | None) -> None:
    """The report's files into the sweep's ``parent`` run (folder ``report``); without one, into a run of
    its own named ``report`` (tag ``kind=report``)."""
    if parent is not None:
        for path in files:
            client.log_artifact(parent, str(path), "report")
        return
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    run = client.create_run(experiment_id, run_name="report", tags={KIND: "report", "runs": str(len(runs))})
    status = JobStatus.failed
    try:
        for path in files:
            client.log_artifact(run.info.run_id, str(path), "report")
        status = JobStatus.finished
    finally:
        client.set_terminated(run.info.run_id, status.mlflow_status)

"""Reading a store for the report: one row per run (one ``search_runs``), and the runs' own files read
in bulk (in place on a local store; one listing and one download per
file on a server)."""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..config.errors import ConfigError, did_you_mean
from ..tracking.schema import JOB_NUM, KIND, OPTUNA_TRIAL, OVERRIDES, STATUS, SWEEP_ID
from .readers import READERS

def load_runs(client: MlflowClient, experiment: str, every_sweep: bool = False,
              sweep_id: str | None = None) -> pd.DataFrame:
    """One row per run of ``experiment`` (sweep ``sweep_id``, else its latest sweep unless ``every_sweep``),
    report runs left out."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments()
                       if client.search_runs([e.experiment_id], max_results=1))
        known = f"experiments with runs: {', '.join(names) or 'none'}{did_you_mean(experiment, names)}"
        raise ConfigError(f"experiment={experiment}", f"not in the store {client.tracking_uri}; {known}")
    query = f"tags.{SWEEP_ID} = '{sweep_id}'" if sweep_id else ""
    runs = [r for r in client.search_runs([found.experiment_id], query, max_results=50000)
            if r.data.tags.get(KIND) not in ("report", "sweep")]  # the jobs' runs, not parents or reports
    if not runs:
        raise ConfigError(f"experiment={experiment}", "has no runs to compare")
    rows = []
    for run in runs:
        row = {"run_id": run.info.run_id, "run_name": run.info.run_name, "start_time": run.info.start_time,
               "artifact_uri": run.info.artifact_uri,
               "status": run.data.tags.get(STATUS, "?"), "sweep_id": run.data.tags.get(SWEEP_ID),
               # a search's trials in the study's order (a continued search's runs joined from earlier ones)
               "order": int(run.data.tags.get(OPTUNA_TRIAL, run.data.tags.get(JOB_NUM, 0))),
               "overrides": run.data.tags.get(OVERRIDES), "searched": OPTUNA_TRIAL in run.data.tags}
        row |= {f"params.{k}": v for k, v in run.data.params.items()}
        row |= {f"metrics.{k}": v for k, v in run.data.metrics.items()}
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not every_sweep and frame["sweep_id"].notna().any():
        latest = frame.dropna(subset=["sweep_id"]).sort_values("start_time")["sweep_id"].iloc[-1]
        frame = frame[frame["sweep_id"] == latest]
    return frame.sort_values(["order", "start_time"]).reset_index(drop=True)


def load_artifacts(client: MlflowClient, runs: pd.DataFrame) -> dict[str, dict]:
    """``{artifact: {run_id: its contents}}`` for the artifacts in ``READERS``: read in place from a local
    artifact store; from a server, one listing a run and one download per artifact the run has,
    ``DOWNLOADS`` runs at a time (each is a round trip: 1000 runs one after another took minutes).  A
    failed run may have none; it keeps its table row."""
    loaded = {name: {} for name in READERS}
    # threads for a server's round trips; a local store's files are read quicker one after the other
    threads = 1 if runs["artifact_uri"].str.startswith("file:").all() else DOWNLOADS
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(threads) as pool:
        read = pool.map(lambda run: _read_run(client, *run, tmp), zip(runs["run_id"], runs["artifact_uri"]))
        for run_id, contents in zip(runs["run_id"], read):
            for name, content in contents.items():
                loaded[name][run_id] = content
    return loaded


DOWNLOADS = 8  # runs whose files are fetched from a server at once


def _read_run(client: MlflowClient, run_id: str, artifact_uri: str, tmp: str) -> dict:
    """The run's artifacts among ``READERS``, read."""
    local = Path(url2pathname(urlparse(artifact_uri).path)) if artifact_uri.startswith("file:") else None
    try:
        if local is not None:  # a local artifact store: read the files where they are, no copy
            present = {p.name for p in local.iterdir()} & set(READERS) if local.is_dir() else set()
            return {name: READERS[name](local / name) for name in present}
        present = {f.path for f in client.list_artifacts(run_id)} & set(READERS)
        folder = Path(tmp, run_id)
        folder.mkdir()
        return {name: READERS[name](client.download_artifacts(run_id, name, str(folder))) for name in present}
    except (MlflowException, OSError):
        return {}

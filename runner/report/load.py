"""Reading a store for the report: one row per run (one ``search_runs``), which params the runs vary,
and the runs' own files read in bulk (in place on a local store; one listing and one download per
file on a server)."""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..config.deciding import decides_the_result
from ..config.errors import ConfigError, did_you_mean
from ..tracking.schema import JOB_NUM, KIND, OPTUNA_TRIAL, STATUS, SWEEP_ID
from .tables import as_numbers, as_text

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
               "order": int(run.data.tags.get(OPTUNA_TRIAL, run.data.tags.get(JOB_NUM, 0)))}
        row |= {f"params.{k}": v for k, v in run.data.params.items()}
        row |= {f"metrics.{k}": v for k, v in run.data.metrics.items()}
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not every_sweep and frame["sweep_id"].notna().any():
        latest = frame.dropna(subset=["sweep_id"]).sort_values("start_time")["sweep_id"].iloc[-1]
        frame = frame[frame["sweep_id"] == latest]
    return frame.sort_values(["order", "start_time"]).reset_index(drop=True)


def swept_columns(runs: pd.DataFrame) -> list[str]:
    """The params that differ between the runs: what the sweep varied.  A parameter of one option
    (``init.std`` when the sweep also varies ``init``) is left out: its "null" in the other options'
    runs would split them into a meaningless panel; so is one that does not change what a run computes
    (``resume``: a resumed sweep's reused runs have it false, its new ones true)."""
    params = [c for c in runs.columns if c.startswith("params.") and decides_the_result(c.removeprefix("params."))]
    swept = []
    for column in params:
        values = as_text(runs[column])
        group = column.removeprefix("params.").split(".")[0]
        # a parameter of the chosen option (init.std, optimizer.lr at each optimizer's default) follows
        # the group's choice when the sweep varies it: not an axis of its own
        an_options_own = "." in column.removeprefix("params.") and f"params.{group}" in params and \
            as_text(runs[f"params.{group}"]).nunique() > 1 and _determined_by(values, as_text(runs[f"params.{group}"]))
        # a group choice and its option's name (init / init.name), or a value derived from a swept one
        # (init.sigma_w2 = ${critical_sigma_w2:${activation.name},...}), say the same: keep one
        if values.nunique() > 1 and not an_options_own and not any(_same_split(values, as_text(runs[kept]))
                                                                    for kept in swept):
            swept.append(column)
    return swept


def _determined_by(values: pd.Series, choice: pd.Series) -> bool:
    """Whether each choice comes with one value."""
    return pd.DataFrame({"v": values, "c": choice}).drop_duplicates()["c"].is_unique


def _same_split(a: pd.Series, b: pd.Series) -> bool:
    """Whether two columns split the runs into the same groups (one value of ``a`` to one of ``b``), as
    one that follows from the other does; not two numbers that merely differ in every run (a search's
    samples: the learning rate and the init's scale each a value per trial)."""
    pairs = pd.DataFrame({"a": a, "b": b}).drop_duplicates()
    if len(pairs) == len(a) > 2 and as_numbers(a) is not None and as_numbers(b) is not None:
        return False
    return pairs["a"].is_unique and pairs["b"].is_unique


def _read_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as arrays:
        return dict(arrays)


READERS = {  # the run artifacts the report reads, and how
    "history.csv": pd.read_csv,
    "distributions.npz": _read_npz,  # tracking.detail=full
    "jacobian.npz": lambda path: _read_npz(path)["singular_values"],  # trainer.jacobian_samples
    "theory.csv": pd.read_csv,  # runs with a mean-field prediction
}


def load_artifacts(client: MlflowClient, runs: pd.DataFrame) -> dict[str, dict]:
    """``{artifact: {run_id: its contents}}`` for the artifacts in ``READERS``: read in place from a local
    artifact store; from a server, one listing a run and one download per artifact the run has,
    ``DOWNLOADS`` runs at a time (each is a round trip: 1000 runs one after another took minutes).  A
    failed run may have none; it keeps its table row."""
    loaded = {name: {} for name in READERS}
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(DOWNLOADS) as pool:
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

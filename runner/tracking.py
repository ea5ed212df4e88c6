"""MLflow tracking: where the store is, and a fit-loop callback that sends metrics in batches.

Only imported when ``tracking=mlflow``: ``tracking=none`` never imports MLflow.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from backprop_core import Callback

BATCH = 1000  # MLflow's log_batch takes at most 1000 metrics a call
STANDARD_PREFIXES = ("train/", "val/", "grad_norm/", "output/")


def embedded_store(cwd: Path | None = None) -> tuple[str, str]:
    """The default store: ``sqlite:///<cwd>/outputs/mlflow.db`` and its artifact root beside it."""
    outputs = (cwd or Path.cwd()).resolve() / "outputs"
    return f"sqlite:///{outputs / 'mlflow.db'}", (outputs / "mlartifacts").as_uri()


def resolve_uri(configured: str | None) -> tuple[str, str | None]:
    """``(tracking URI, artifact root for new experiments or None for the store's default)``:
    ``tracking.uri`` if set, else ``$MLFLOW_TRACKING_URI``, else the embedded store."""
    if configured:
        return configured, None
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"], None
    uri, artifacts = embedded_store()
    Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return uri, artifacts


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    """The id of experiment ``name``, created if needed (safe when several jobs race to create it)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        location = f"{artifact_root}/{name}" if artifact_root else None
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:
        experiment = client.get_experiment_by_name(name)  # another job created it first
        if experiment is None:
            raise
        return experiment.experiment_id


def ui_command(uri: str) -> str:
    return f"mlflow ui --backend-store-uri {uri}"


class MlflowTracker(Callback):
    """Buffers the fit loop's records and sends them with ``log_batch``, at most 1000 points a call."""

    def __init__(self, uri: str, artifact_root: str | None, experiment: str, detail: str) -> None:
        self.client = MlflowClient(uri)
        self.uri = uri
        self.artifact_root = artifact_root
        self.experiment = experiment
        self.keep = (lambda key: key.startswith(STANDARD_PREFIXES)) if detail == "standard" else (lambda key: True)
        self.buffer: list[Metric] = []
        self.run_id: str | None = None

    def start(self, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> str:
        experiment_id = ensure_experiment(self.client, self.experiment, self.artifact_root)
        run = self.client.create_run(experiment_id, run_name=run_name, tags=tags)
        self.run_id = run.info.run_id
        items = [Param(k, str(v)) for k, v in params.items()]
        try:
            for i in range(0, len(items), 100):  # log_batch takes at most 100 params a call
                self.client.log_batch(self.run_id, params=items[i:i + 100])
        except BaseException:
            self.client.set_terminated(self.run_id, "FAILED")  # never left RUNNING
            raise
        return self.run_id

    def on_step(self, record: dict[str, float]) -> None:
        step, now = int(record["step"]), int(time.time() * 1000)
        self.buffer.extend(
            Metric(key, float(value), now, step)
            for key, value in record.items()
            if key not in ("step", "epoch") and self.keep(key)
        )
        if len(self.buffer) >= BATCH:
            self.flush()

    def flush(self, tags: list[RunTag] = ()) -> None:
        """Send the buffered points, at most 1000 a call; ``tags`` go with the last call."""
        batches = [self.buffer[i:i + BATCH] for i in range(0, len(self.buffer), BATCH)]
        for batch in batches[:-1]:
            self.client.log_batch(self.run_id, metrics=batch)
        if batches or tags:
            self.client.log_batch(self.run_id, metrics=batches[-1] if batches else (), tags=tags)
        self.buffer = []

    def finish(self, status: str, summary: dict[str, float], artifacts: list[tuple[Path, str | None]]) -> None:
        """Send the artifacts, then what is buffered with the summary metrics and the status; close the run."""
        try:
            for path, folder in artifacts:
                if path.exists():
                    self.client.log_artifact(self.run_id, str(path), folder)
            now = int(time.time() * 1000)
            self.buffer.extend(Metric(k, float(v), now, 0) for k, v in summary.items())
            self.flush(tags=[RunTag("status", status)])
        finally:
            self.client.set_terminated(self.run_id, "FAILED" if status == "failed" else "FINISHED")

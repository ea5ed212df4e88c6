"""Hydra callbacks: prepare the tracking store once per multirun, and summarise the sweep."""

from __future__ import annotations

import hashlib
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def sweep_id_of(sweep_dir: str) -> str:
    """One id for every job of a multirun, from its sweep directory as configured.

    Hydra resolves ``hydra.sweep.dir`` (with its timestamp) once and hands every job the same
    value, in the launching process or a worker on another machine, so no state needs passing.
    """
    return hashlib.sha1(str(sweep_dir).encode()).hexdigest()[:12]


class SweepTracking(Callback):
    """Creates the MLflow store and experiment in the launching process before any job starts,
    and prints a summary of the sweep's runs at the end.

    Several processes creating a fresh sqlite store at once fail in MLflow's schema migration
    (``duplicate column name``), so parallel jobs must find it ready.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.sweep_id = sweep_id_of(config.hydra.sweep.dir)
        self.uri = None
        if config.tracking.name == "mlflow":
            from mlflow.tracking import MlflowClient

            from .tracking import ensure_experiment, resolve_uri

            self.uri, artifact_root = resolve_uri(config.tracking.uri)
            experiment = config.tracking.experiment or config.hydra.runtime.choices.get("experiment") or "default"
            ensure_experiment(MlflowClient(self.uri), experiment, artifact_root)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.uri is None:
            return
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.uri)
        runs = client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            filter_string=f"tags.sweep_id = '{self.sweep_id}'",
            max_results=50000,
        )
        by_status: dict[str, list[str]] = {}
        for run in sorted(runs, key=lambda r: int(r.data.tags.get("job_num", 0))):
            by_status.setdefault(run.data.tags.get("status", "?"), []).append(
                f"#{run.data.tags.get('job_num')} {run.info.run_name}"
            )
        counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(by_status.items()))
        print(f"sweep {self.sweep_id}: {len(runs)} runs ({counts})")
        for status in ("diverged", "failed"):
            for job in by_status.get(status, []):
                print(f"  {status}: {job}")
        from .tracking import ui_command

        print(f"Compare them in MLflow (filter: tags.sweep_id = '{self.sweep_id}'):  {ui_command(self.uri)}")

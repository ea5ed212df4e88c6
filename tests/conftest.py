import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from threadpoolctl import threadpool_limits

from runner.config.options import register

register()
threadpool_limits(1)  # shared 2-core machines: one BLAS thread in the test process (jobs set their own)
CONF = Path(__file__).resolve().parents[1] / "conf"


def run_cli(cwd: Path, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m runner ARGS`` in ``cwd``, as a user types it (no MLFLOW_TRACKING_URI unless given)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    environment |= env or {}
    return subprocess.run(
        [sys.executable, "-m", "runner", *args], cwd=cwd, env=environment, capture_output=True, text=True,
        timeout=timeout,
    )


def store_uri(cwd: Path) -> str:
    return f"sqlite:///{cwd / 'outputs' / 'mlflow.db'}"


@pytest.fixture
def cli():
    return run_cli


def compose_cfg(overrides: list[str]):
    """The composed config, as ``backprop-lab OVERRIDES`` would see it."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=overrides)


def output_loss_pairs(n_outputs: int = 3) -> list[tuple[str, str]]:
    """Every (output activation, loss) pair the engine accepts for ``n_outputs`` units."""
    from backprop_core import ACTIVATIONS, LOSSES, get_activation, get_loss

    pairs = []
    for output in sorted(ACTIVATIONS):
        for loss in sorted(LOSSES):
            try:
                get_loss(loss).check_output(get_activation(output), n_outputs)
            except ValueError:
                continue
            pairs.append((output, loss))
    return pairs


def assert_drawn(path, min_size=(400, 300)):
    """``path`` is a PNG with something drawn on it: large enough, and more than a blank canvas (many
    colours, pixels that differ from the background)."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= min_size[0] and image.height >= min_size[1], path
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert len(np.unique(pixels)) > 20 and (pixels < 250).mean() > 0.01, f"{path} is (almost) blank"


def thousand_job_grid(epochs: int, log_every: int) -> list[str]:
    """The overrides of a 1000-job sweep: a 40 σ_w² × 25 depth grid of small tanh nets (mean-field init), on
    2 joblib workers, into ``sweep/``."""
    return ["init=mean_field", "activation=tanh", "init.sigma_w2=range(0.5,4.5,0.1)", "architecture.depth=range(2,52,2)",
            "architecture.width=8", "init.sigma_b2=0.05", f"trainer.epochs={epochs}", f"trainer.log_every={log_every}",
            "dataset.n_samples=200", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweep.dir=sweep"]


def assert_every_point_recorded(client, experiment: str, folder: Path, n_jobs: int, keys: tuple[str, ...]) -> None:
    """Every job of a sweep of ``n_jobs`` has its run in ``experiment``, finished, and each of ``keys`` has
    in MLflow every step of the run's own ``history.csv`` (downloaded into ``folder``); the parent run
    counts them all finished."""
    import pandas as pd

    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id], "tags.kind = 'job'", max_results=50000)
    assert sorted(int(run.data.tags["job_num"]) for run in runs) == list(range(n_jobs))
    for run in runs:
        assert run.data.tags["status"] == "finished", run.info.run_name
        target = folder / run.info.run_id
        target.mkdir(parents=True)
        steps = pd.read_csv(client.download_artifacts(run.info.run_id, "history.csv", str(target)))["step"].tolist()
        for key in keys:
            recorded = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert sorted(recorded) == steps, (run.info.run_name, key)
    (parent,) = client.search_runs([experiment_id], "tags.kind = 'sweep'")
    assert parent.data.metrics["sweep/finished"] == n_jobs

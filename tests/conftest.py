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

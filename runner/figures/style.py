"""What every figure shares: matplotlib without a display, the history's columns, values a log axis
can show, percentile bands from histograms, and saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from backprop_core.distributions import quantile_from_histogram  # noqa: E402

# a title at a fixed height: matplotlib otherwise places each title anew at every draw, measuring every
# axis of the figure (half the time of a 36-panel report figure went there)
plt.rcParams["axes.titley"] = 1.0
plt.rcParams["axes.titlepad"] = 4.0

__all__ = ["plt", "read_history", "layer_columns", "plottable", "distribution_bands", "save_figure"]
MAX_PLOTTED_POINTS = 4000  # per line: a million-step history draws as fast as a short one


def read_history(path: Path) -> pd.DataFrame:
    """The columns the run's figures draw, from its ``history.csv`` (thinned to about
    ``MAX_PLOTTED_POINTS`` rows, the first and the closing record always kept)."""
    with open(path) as file:
        header = file.readline().strip().split(",")
    wanted = [c for c in header if c in ("step", "train/loss", "val/loss") or c.startswith("grad_norm/grad_norm_l")]
    history = pd.read_csv(path, usecols=wanted)
    stride = max(1, len(history) // MAX_PLOTTED_POINTS)
    if stride > 1:
        keep = np.zeros(len(history), bool)
        keep[::stride] = keep[-1] = True
        history = history[keep].reset_index(drop=True)
    return history


def layer_columns(history: pd.DataFrame, name: str, letter: str = "l") -> list[str]:
    """The columns of ``name`` per layer (``letter="b"``: per residual block), input side first."""
    return sorted(c for c in history.columns if c.startswith(f"{name}/{name}_{letter}"))


def plottable(values) -> np.ndarray:
    """Values a log axis can show: NaN for 0, negatives, inf and anything past 1e100 (over a few
    hundred decades matplotlib's tick arithmetic overflows); an exploding run is drawn up to there."""
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where((values > 0) & (values < 1e100), values, np.nan)


BAND_PERCENTILES = (2.28, 15.87, 50, 84.13, 97.72)  # TensorBoard's bands: median, +-1 and +-2 sigma
PANEL_TITLES = {"grad": "|dL/dW|", "weight": "W", "act": "A (activations)"}


def distribution_bands(counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``BAND_PERCENTILES`` of each histogram in ``counts`` (shape ``(..., bins)``), shape ``(..., 5)``."""
    flat = counts.reshape(-1, counts.shape[-1])
    bands = [[quantile_from_histogram(c, p / 100, edges) for p in BAND_PERCENTILES] for c in flat]
    return np.array(bands).reshape(*counts.shape[:-1], len(BAND_PERCENTILES))


def save_figure(fig, path: Path, margins: bool = True) -> Path:
    """Write ``fig`` as a PNG and close it."""
    if margins:  # fixed margins: tight_layout would draw the figure twice (half the cost of a run's plots)
        fig.subplots_adjust(left=0.14, right=0.97, top=0.91, bottom=0.13)
    fig.savefig(path, dpi=100, pil_kwargs={"compress_level": 1})  # a tenth larger, a third faster to write
    plt.close(fig)
    return path

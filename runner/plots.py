"""Figures of one run: loss curves, per-layer gradient norms over steps, the gradient profile."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


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


def layer_columns(history: pd.DataFrame, name: str) -> list[str]:
    return sorted(c for c in history.columns if c.startswith(f"{name}/{name}_l"))


def plottable(values) -> np.ndarray:
    """Values a log axis can show: NaN for 0, negatives, inf and anything past 1e100 (over a few
    hundred decades matplotlib's tick arithmetic overflows); an exploding run is drawn up to there."""
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where((values > 0) & (values < 1e100), values, np.nan)


def plot_run(history: pd.DataFrame, folder: Path, title: str) -> list[Path]:
    """Write ``loss.png``, ``grad_norms.png`` and ``grad_profile.png`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("train/loss", "val/loss"):
        if key in history:
            ax.plot(history["step"], plottable(history[key]), label=key)
    ax.set(xlabel="step", ylabel="loss", yscale="log", title=title)
    ax.legend()
    paths.append(save_figure(fig, folder / "loss.png"))

    columns = layer_columns(history, "grad_norm")
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = plt.cm.viridis(np.linspace(0, 1, max(len(columns), 2)))
    for color, key in zip(colors, columns):
        ax.plot(history["step"], plottable(history[key]), color=color, label=key.rsplit("_", 1)[1])
    ax.set(xlabel="step", ylabel="||dL/dW||  (Frobenius)", yscale="log", title=f"{title}: gradient norm per layer")
    if len(columns) <= 12:
        ax.legend(fontsize="small", ncol=2)
    paths.append(save_figure(fig, folder / "grad_norms.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    layers = np.arange(1, len(columns) + 1)
    for label, row in (("first step", history.iloc[0]), ("closing step", history.iloc[-1])):
        ax.plot(layers, plottable(row[columns].to_numpy(dtype=float)), marker="o",
                label=f"{label} ({int(row['step'])})")
    ax.set(xlabel="layer (1 = input side)", ylabel="||dL/dW||", yscale="log", title=f"{title}: gradient profile")
    ax.set_xticks(layers)
    ax.legend()
    paths.append(save_figure(fig, folder / "grad_profile.png"))
    return paths


def save_figure(fig, path: Path, margins: bool = True) -> Path:
    """Write ``fig`` as a PNG and close it."""
    if margins:  # fixed margins: tight_layout would draw the figure twice (half the cost of a run's plots)
        fig.subplots_adjust(left=0.14, right=0.97, top=0.91, bottom=0.13)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

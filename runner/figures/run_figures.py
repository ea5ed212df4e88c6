"""Figures of one run: loss curves, per-layer gradient norms over steps, the gradient profile, and
(with ``tracking.detail=full``) the distributions of gradients, weights and activations."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from backprop_core.distributions import QUANTITIES, magnitude_histogram

from .style import (PANEL_TITLES, distribution_bands, layer_columns, plottable, plt, read_history,
                    save_figure)


SHORT_HISTORY = 30  # records: up to this many, each is marked on the curves over steps


def draw_run_figures(folder: Path, title: str) -> list[Path]:
    """A run's own figures from the files in its ``folder``: ``plots/loss.png``, ``grad_norms.png``,
    ``grad_profile.png`` from ``history.csv`` and, with ``distributions.npz``, ``distributions.png``."""
    history = read_history(folder / "history.csv")
    paths = plot_run(history, folder / "plots", title) if len(history) else []
    if (folder / "distributions.npz").exists():
        with np.load(folder / "distributions.npz") as arrays:
            paths.append(plot_distributions(dict(arrays), folder / "plots" / "distributions.png", title))
    return paths


def plot_run(history: pd.DataFrame, folder: Path, title: str) -> list[Path]:
    """Write ``loss.png``, ``grad_norms.png`` and ``grad_profile.png`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    # a short history's points marked: a run that diverged at step 1 has a single point, which a line
    # without markers does not draw
    marker = "." if len(history) <= SHORT_HISTORY else None

    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")  # a title and labels of any length
    for key in ("train/loss", "val/loss"):
        if key in history:
            ax.plot(history["step"], plottable(history[key]), label=key, marker=marker)
    ax.set(xlabel="step", ylabel="loss", yscale="log")
    ax.set_title(_wrapped(title), fontsize="medium")
    ax.legend()
    paths.append(save_figure(fig, folder / "loss.png", margins=False))

    columns = layer_columns(history, "grad_norm")
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")  # a title and labels of any length
    colors = plt.cm.viridis(np.linspace(0, 1, max(len(columns), 2)))
    for color, key in zip(colors, columns):
        ax.plot(history["step"], plottable(history[key]), color=color, marker=marker)
    ax.set(xlabel="step", ylabel="||dL/dW||  (Frobenius)", yscale="log")
    ax.set_title(_wrapped(f"{title}: gradient norm per layer"), fontsize="medium")
    # a colour bar names the layers however many there are (a legend of 16 or more entries covered the curves)
    bar = fig.colorbar(plt.cm.ScalarMappable(plt.Normalize(1, max(len(columns), 2)), cmap="viridis"), ax=ax, pad=0.02)
    bar.set_label("layer (1 = input side)")
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    paths.append(save_figure(fig, folder / "grad_norms.png", margins=False))

    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")  # a title and labels of any length
    layers = np.arange(1, len(columns) + 1)
    for label, row in (("first step", history.iloc[0]), ("closing step", history.iloc[-1])):
        ax.plot(layers, plottable(row[columns].to_numpy(dtype=float)), marker="o",
                label=f"{label} ({int(row['step'])})")
    ax.set(xlabel="layer (1 = input side)", ylabel="||dL/dW||", yscale="log")
    ax.set_title(_wrapped(f"{title}: gradient profile"), fontsize="medium")
    ax.set_xticks(layers)
    ax.legend()
    paths.append(save_figure(fig, folder / "grad_profile.png", margins=False))
    return paths


def _wrapped(title: str) -> str:
    """A title on at most two lines of a 6-inch figure (a run's name can be long)."""
    lines = textwrap.wrap(title, 60)
    return "\n".join(lines[:2]) + ("..." if len(lines) > 2 else "")


def shown_layers(n_layers: int, most: int = 4) -> list[int]:
    """Up to ``most`` layer indices (0-based), the first and the last always among them."""
    return sorted(set(np.linspace(0, n_layers - 1, min(most, n_layers)).round().astype(int).tolist()))


def draw_bands(ax, x, bands: np.ndarray, colour) -> None:
    """Median line, +-1 sigma band dark, +-2 sigma band light (``bands`` from ``distribution_bands``)."""
    ax.fill_between(x, bands[:, 0], bands[:, 4], color=colour, alpha=0.2, linewidth=0)
    ax.fill_between(x, bands[:, 1], bands[:, 3], color=colour, alpha=0.4, linewidth=0)
    ax.plot(x, bands[:, 2], color=colour, linewidth=1)


def plot_distributions(arrays: dict[str, np.ndarray], path: Path, title: str) -> Path:
    """TensorBoard-style distributions over steps: rows |dL/dW| (log axis), W and A; columns up to
    four layers (first and last among them)."""
    steps, L = arrays["steps"], arrays["grad"].shape[1]
    layers = shown_layers(L)
    fig, axes = plt.subplots(3, len(layers), figsize=(2.9 * len(layers) + 0.8, 6.6), squeeze=False, sharex=True)
    for row, quantity in enumerate(QUANTITIES):
        counts, edges = arrays[quantity], arrays["edges"]
        if quantity == "grad":
            counts, edges = magnitude_histogram(counts)
        bands = distribution_bands(counts[:, layers], edges)
        for col, k in enumerate(layers):
            ax = axes[row, col]
            values = plottable(bands[:, col]) if quantity == "grad" else bands[:, col]
            draw_bands(ax, steps, values, plt.cm.tab10(row))
            if quantity == "grad":
                ax.set_yscale("log")
            ax.tick_params(labelsize="small")
            if row == 0:
                ax.set_title(f"layer {k + 1} of {L}", fontsize="medium")
            if col == 0:
                ax.set_ylabel(PANEL_TITLES[quantity])
            if row == 2:
                ax.set_xlabel("step")
    fig.suptitle(f"{title}: distributions (median, +-1 and +-2 sigma bands)", fontsize="medium")
    fig.tight_layout()
    return save_figure(fig, path, margins=False)

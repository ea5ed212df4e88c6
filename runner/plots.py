"""Figures of one run: loss curves, per-layer gradient norms over steps, the gradient profile, and
(with ``tracking.detail=full``) the distributions of gradients, weights and activations."""

from __future__ import annotations

from pathlib import Path

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from backprop_core.distributions import QUANTITIES, magnitude_histogram, quantile_from_histogram  # noqa: E402


MAX_PLOTTED_POINTS = 4000  # per line: a million-step history draws as fast as a short one


def draw_run_figures(folder: Path, title: str) -> list[Path]:
    """A run's own figures from the files in its ``folder``: ``plots/loss.png``, ``grad_norms.png``,
    ``grad_profile.png`` from ``history.csv`` and, with ``distributions.npz``, ``distributions.png``."""
    history = read_history(folder / "history.csv")
    paths = plot_run(history, folder / "plots", title) if len(history) else []
    if (folder / "distributions.npz").exists():
        with np.load(folder / "distributions.npz") as arrays:
            paths.append(plot_distributions(dict(arrays), folder / "plots" / "distributions.png", title))
    return paths


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

    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")  # a title and labels of any length
    for key in ("train/loss", "val/loss"):
        if key in history:
            ax.plot(history["step"], plottable(history[key]), label=key)
    ax.set(xlabel="step", ylabel="loss", yscale="log")
    ax.set_title(_wrapped(title), fontsize="medium")
    ax.legend()
    paths.append(save_figure(fig, folder / "loss.png", margins=False))

    columns = layer_columns(history, "grad_norm")
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")  # a title and labels of any length
    colors = plt.cm.viridis(np.linspace(0, 1, max(len(columns), 2)))
    for color, key in zip(colors, columns):
        ax.plot(history["step"], plottable(history[key]), color=color)
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


BAND_PERCENTILES = (2.28, 15.87, 50, 84.13, 97.72)  # TensorBoard's bands: median, +-1 and +-2 sigma
PANEL_TITLES = {"grad": "|dL/dW|", "weight": "W", "act": "A (activations)"}


def distribution_bands(counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``BAND_PERCENTILES`` of each histogram in ``counts`` (shape ``(..., bins)``), shape ``(..., 5)``."""
    flat = counts.reshape(-1, counts.shape[-1])
    bands = [[quantile_from_histogram(c, p / 100, edges) for p in BAND_PERCENTILES] for c in flat]
    return np.array(bands).reshape(*counts.shape[:-1], len(BAND_PERCENTILES))


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


def save_figure(fig, path: Path, margins: bool = True) -> Path:
    """Write ``fig`` as a PNG and close it."""
    if margins:  # fixed margins: tight_layout would draw the figure twice (half the cost of a run's plots)
        fig.subplots_adjust(left=0.14, right=0.97, top=0.91, bottom=0.13)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _job_name(folder: Path) -> str:
    """The job's name from its ``job.json`` (a sweep's job), else the folder's."""
    import json

    try:
        return json.loads((folder / "job.json").read_text())["name"]
    except (OSError, ValueError, KeyError):
        return folder.name


def main(argv: list[str] | None = None) -> None:
    """``python -m runner.plots FOLDER...``: draw the own figures of every run below the folders that has
    a ``history.csv`` and no ``plots/`` yet (a sweep's jobs leave them out unless
    ``tracking.run_figures=always``; with MLflow, ``python -m runner.report --run-figures`` does this)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m runner.plots",
                                     description="Draw the own figures of the runs below FOLDER that have none yet.")
    parser.add_argument("folders", nargs="+", type=Path, help="run or sweep directories")
    args = parser.parse_args(argv)
    for folder in args.folders:
        if not folder.is_dir():
            parser.exit(2, f"{parser.prog}: error: {folder}: no such directory\n")
    runs = sorted({path.parent for folder in args.folders for path in folder.rglob("history.csv")})
    if not runs:
        parser.exit(2, f"{parser.prog}: error: {' '.join(map(str, args.folders))}: no run directory below "
                       "(none holds a history.csv)\n")
    drawn = [run for run in runs if not (run / "plots").exists() and draw_run_figures(run, _job_name(run))]
    print(f"plots: drew the figures of {len(drawn)} of {len(runs)} runs" + (f" (in {drawn[0]}/plots, ...)" if drawn else ""))


if __name__ == "__main__":
    main()

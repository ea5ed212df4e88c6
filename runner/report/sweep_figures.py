"""The sweep's figures: gradient profiles, loss curves, gradient distributions and heatmaps, faceted by
the swept axes (``runner.report.small_multiples``)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from backprop_core.distributions import magnitude_histogram

from ..figures.style import distribution_bands, layer_columns, plottable, plt, save_figure
from ..tracking.schema import JobStatus
from .small_multiples import curve, layout, run_labels, small_multiples
from .tables import as_text, value_ranks

HIDDEN_ONLY = ("act_std", "act_mean", "saturation")  # per-layer statistics of activations: the output layer apart
MARKED_RUNS = 64  # the profiles of more runs are drawn as lines without point markers


def plot_profiles(runs, histories, swept, path: Path, metric: str = "grad_norm", letter: str = "l") -> Path:
    """``metric`` against layer (``letter="b"``: against residual block), one line per run: solid at step 0,
    dashed at the closing step; a run without the metric (a plain net among residual ones) has no line.
    An activation statistic is drawn over the hidden layers only: the output layer's (the prediction's
    spread, near 0 when the outputs agree) would read as the signal dying."""
    hidden_only = metric in HIDDEN_ONLY
    marker = "." if len(runs) <= MARKED_RUNS else None  # a marker per point: a third of the drawing time

    def draw(ax, items, colour, label):
        columns = layer_columns(items[0], metric, letter)[:-1 if hidden_only else None]
        if not columns:  # a plain net in a sweep with residual ones
            ax.text(0.5, 0.5, f"no {metric}", transform=ax.transAxes, ha="center", va="center", color="grey")
            return
        layers = np.arange(1, len(columns) + 1)
        ends = [h.to_numpy(float)[[0, -1]][:, h.columns.get_indexer(columns)] for h in items]  # pandas row
        curve(ax, layers, [first for first, _ in ends], colour, label, marker=marker)        # lookups took
        curve(ax, layers, [last for _, last in ends], colour, linestyle="--", alpha=0.6)      # half the time
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))  # few ticks: each is four objects to draw

    histories = {k: h for k, h in histories.items() if not h.empty}
    xlabel = "residual block (1 = input side)" if letter == "b" else \
        "hidden layer (the output layer left out)" if hidden_only else "layer (1 = input side)"
    return small_multiples(runs, histories, swept, path, draw, xlabel, f"{metric} (solid: step 0, dashed: closing)")


def plot_losses(runs, histories, swept, path: Path) -> Path:
    """Loss over steps, one line per run: training solid, validation dotted; a run that diverged ends in
    an x at its last loss a log axis shows (one that diverged at step 1 has no line to end); every panel
    spans the sweep's steps."""
    diverged = {id(histories[r]) for r in runs.loc[runs["status"].eq(JobStatus.diverged), "run_id"] if r in histories}

    def draw(ax, items, colour, label):
        curve(ax, items[0]["step"], [h["train/loss"].to_numpy(float) for h in items], colour, label)
        if "val/loss" in items[0]:
            curve(ax, items[0]["step"], [h["val/loss"].to_numpy(float) for h in items], colour,
                   linestyle=":", alpha=0.7)
        for history in items:
            if id(history) in diverged and (end := last_shown(history)) is not None:
                ax.plot(*end, marker="x", markersize=7, color=colour, linestyle="none")
        if last > first:  # every panel over the sweep's steps: a run that diverged at step 1 reads as early
            ax.set_xlim(first - 0.02 * (last - first), last + 0.02 * (last - first))

    histories = {k: h for k, h in histories.items() if not h.empty}
    first = min((h["step"].iloc[0] for h in histories.values()), default=0)
    last = max((h["step"].iloc[-1] for h in histories.values()), default=0)
    return small_multiples(runs, histories, swept, path, draw, "step",
                           "loss (solid: train, dotted: val" + ("; x: diverged)" if diverged else ")"))


def last_shown(history: pd.DataFrame) -> tuple[float, float] | None:
    """``(step, train loss)`` of the last record a log axis shows (``plottable``), or None."""
    shown = np.flatnonzero(np.isfinite(plottable(history["train/loss"])))
    return (float(history["step"].iloc[shown[-1]]), float(history["train/loss"].iloc[shown[-1]])) if len(shown) else None


def plot_grad_distributions(runs, distributions, swept, path: Path) -> Path:
    """|dL/dW| against layer at step 0 from the runs' histograms: median line, 16-84 % band."""
    def draw(ax, items, colour, label):
        bands = [distribution_bands(*magnitude_histogram(d["grad"][0])) for d in items]
        layers = np.arange(1, len(bands[0]) + 1)
        curve(ax, layers, [b[:, 2] for b in bands], colour, label, marker=".")
        low, high = plottable(np.mean([b[:, 1] for b in bands], axis=0)), plottable(np.mean([b[:, 3] for b in bands], axis=0))
        ax.fill_between(layers, low, high, color=colour, alpha=0.15, linewidth=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    return small_multiples(runs, distributions, swept, path, draw, "layer (1 = input side)",
                            "|dL/dW| at step 0: median, 16-84 % band")


def plot_heatmaps(runs, histories, swept, path: Path) -> Path:
    """log10 gradient norm over steps (x) and layers (y), one panel per run, on one colour scale: a
    grid laid out as the profiles' (``heatmap_grid``), each column and row named once at its edge
    (``heatmap_headers``; runs in rows of 6 are named in their panels' titles), every panel over the
    sweep's steps (a run that diverged stops short), the steps labelled under each column only."""
    maps = {}
    for run_id, history in histories.items():
        if not history.empty:
            maps[run_id] = np.log10(plottable(history[layer_columns(history, "grad_norm")]))
    finite = np.concatenate([m[np.isfinite(m)] for m in maps.values()] or [np.zeros(1)])
    low, high = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    first = min((int(histories[r]["step"].iloc[0]) for r in maps), default=0)
    last = max((int(histories[r]["step"].iloc[-1]) for r in maps), default=1)
    grid = heatmap_grid(runs, swept)
    headers = heatmap_headers(runs, swept, grid)
    rows, cols = grid.shape
    width, height = 2.6 * cols + 1.9, (1.75 if headers else 2.2) * rows + 0.7
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False)
    # fixed spacing: a constrained layout of 100 panels takes longer than drawing them; a title in every
    # panel (rows of 6) needs room above each, headers only above the first row
    fig.subplots_adjust(left=1.0 / width, right=0.86, bottom=0.55 / height, top=1 - 0.45 / height,
                        hspace=0.2 if headers else 0.6, wspace=0.3)
    image, labels = None, run_labels(runs, swept)
    lowest = {c: max((r for r in range(rows) if grid[r, c] >= 0), default=-1) for c in range(cols)}
    leftmost = {r: min((c for c in range(cols) if grid[r, c] >= 0), default=-1) for r in range(rows)}
    diverged = runs["status"].eq(JobStatus.diverged).to_numpy() if "status" in runs else np.zeros(len(runs), bool)
    for (r, c), i in np.ndenumerate(grid):
        ax = axes[r, c]
        if i < 0:
            ax.axis("off")
            continue
        run_id = runs["run_id"].iloc[i]
        if headers is None:
            ax.set_title("\n".join(textwrap.wrap(labels[i], 34)), fontsize=6)
        elif r == 0:
            ax.set_title(headers[0][c], fontsize=7)
        if c == leftmost[r]:  # the row's header, beside its first panel (a grid may lack a row's first cell)
            named = textwrap.wrap(headers[1][r], 24) if headers else []
            ax.set_ylabel("\n".join(named + ["layer"]), fontsize=6)
        ax.tick_params(labelsize=5)
        # the first and last step and layer only: a tick is four objects to draw, most of this figure's time;
        # the steps, the same in every panel, said under each column's lowest panel (text, the rest of it)
        ax.set_xlim(first, max(last, first + 1))
        ax.set_xticks([first, last])
        if r == lowest[c]:
            ax.set_xlabel("step", fontsize=6)
        else:
            ax.tick_params(labelbottom=False)
        if run_id not in maps:
            ax.text(0.5, 0.5, "no history", transform=ax.transAxes, ha="center", va="center", color="grey",
                    fontsize=6)
            ax.set_yticks([])
            continue
        steps = histories[run_id]["step"]
        layers = maps[run_id].shape[1]
        ax.set_yticks(sorted({1, layers}))
        image = ax.imshow(maps[run_id].T, aspect="auto", origin="lower", cmap="magma", vmin=low, vmax=high,
                          interpolation="nearest",
                          extent=[steps.iloc[0], max(steps.iloc[-1], steps.iloc[0] + 1), 0.5, layers + 0.5])
        if diverged[i]:  # its few steps are a sliver of the sweep's: say why
            at = runs["metrics.diverged_at_step"].iloc[i] if "metrics.diverged_at_step" in runs else math.nan
            ax.text(0.5, 0.5, f"diverged at step {at:.0f}" if at == at else "diverged", transform=ax.transAxes,
                    ha="center", va="center", color="grey", fontsize=6)
    if image is not None:
        fig.colorbar(image, cax=fig.add_axes([0.89, 0.2, 0.015, 0.6]), label="log10 ||dL/dW||  (y: layer, x: step)")
    return save_figure(fig, path, margins=False, dpi=110)


def heatmap_headers(runs: pd.DataFrame, swept: list[str], grid: np.ndarray) -> tuple[list[str], list[str]] | None:
    """``(column headers, row headers)`` of ``heatmap_grid``'s grid (``depth=16``; ``init=normal,
    activation=sigmoid``; a row header is empty when one axis is swept), said once at the grid's edge instead
    of in each panel's title; None where a column or row does not share one (runs in rows of 6)."""
    if not swept:
        return None
    column_axis, row_axes = _grid_axes(runs, swept)
    named = {c: run_labels(runs, [c]) for c in swept}

    def shared(cells, axes) -> str | None:
        found = {", ".join(named[a][i] for a in axes) for i in cells if i >= 0}
        return found.pop() if len(found) == 1 else None

    columns = [shared(grid[:, c], [column_axis]) for c in range(grid.shape[1])]
    rows = [shared(grid[r], row_axes) for r in range(grid.shape[0])]
    return None if None in columns + rows else (columns, rows)


def _grid_axes(runs: pd.DataFrame, swept: list[str]) -> tuple[str, list[str]]:
    """The heatmaps' column axis (the profiles' colour axis, depth; else their panels' column axis) and
    row axes (the other swept ones)."""
    colour, facets, _ = layout(runs, swept)
    column_axis = colour or (facets[1] if len(facets) == 2 else swept[0])
    return column_axis, [c for c in swept if c != column_axis]


def heatmap_grid(runs: pd.DataFrame, swept: list[str]) -> np.ndarray:
    """Run indices (-1: no run) in a grid: a column per value of the profiles' colour axis (depth), or
    else of their panels' column axis, a row per combination of the other axes; numbers in numeric order
    and names in the sweep's (as the profiles' panels); runs of an unswept report in rows of 6."""
    if not swept:
        n, cols = len(runs), min(len(runs), 6)
        return np.array([i if i < n else -1 for i in range(math.ceil(n / cols) * cols)]).reshape(-1, cols)
    # depth across, as the profiles' colours; else the profiles' own grid: their rows, their columns
    column_axis, row_axes = _grid_axes(runs, swept)
    along = value_ranks(runs[column_axis])
    column_values = sorted(along.unique())
    # as text, a param a run does not take as "null" (pandas 3 keeps NaN through astype(str), which join refused)
    keys = pd.concat([as_text(runs[c]) for c in row_axes], axis=1).agg("|".join, axis=1) if row_axes \
        else pd.Series([""] * len(runs))
    by_rows = pd.DataFrame({c: value_ranks(runs[c]) for c in row_axes}).sort_values(row_axes).index if row_axes \
        else keys.index
    row_values = list(dict.fromkeys(keys.loc[by_rows]))
    grid = -np.ones((len(row_values), len(column_values)), dtype=int)
    for i, (value, key) in enumerate(zip(along, keys)):
        cell = row_values.index(key), column_values.index(value)
        if grid[cell] >= 0:  # two runs in one cell (seeds, an axis not swept): a panel each, in rows of 6
            return heatmap_grid(runs, [])
        grid[cell] = i
    if grid.size > 2 * len(runs):  # mostly empty (a search's samples: a row and a column each): rows of 6
        return heatmap_grid(runs, [])
    return grid

"""Small multiples over a sweep: one panel per swept group choice, lines coloured along the
ordered axis, seeds folded into a mean and a band, one legend outside the panels.  Shared by the
report's figures (``runner.report.sweep_figures``) and the theory's (``runner.report.theory_figures``)."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.ticker import LogLocator, NullLocator

from ..config.deciding import shortest
from ..figures.style import plain_log_labels, plottable, plt, save_figure
from .tables import as_text, ordered_axis, panel_axes, value_ranks


def run_labels(runs: pd.DataFrame, swept: list[str]) -> list[str]:
    """Each run's label: what the ``swept`` params are for it (``depth=8, activation=relu``; a number
    as in the run's name: ``shortest``), else its name."""
    if not swept:
        return list(runs["run_name"])
    texts = [(c.removeprefix("params.").rsplit(".", 1)[-1], [shortest(v) for v in as_text(runs[c])])
             for c in swept]
    return [", ".join(f"{name}={values[i]}" for name, values in texts) for i in range(len(runs))]


def layout(runs: pd.DataFrame, swept: list[str]) -> tuple[str | None, list[str], list[str]]:
    """``(colour axis, facet axes, label axes)``: lines are coloured along an ordered axis (the numeric
    swept param with the most values, e.g. depth) and panels split by up to two other swept params
    (rows, columns), group choices first, not a search's samples (``panel_axes``); anything left goes
    into the line labels."""
    colour = ordered_axis(runs, swept)
    rest = sorted((c for c in swept if c != colour), key=lambda c: ("." in c, as_text(runs[c]).nunique()))
    facets = panel_axes(runs, rest)[:2]
    return colour, facets, [c for c in rest if c not in facets]


def _panels(runs: pd.DataFrame, facets: list[str]):
    """``(row, column, title, subset)`` for every panel of the facet grid."""
    rows = facet_values(runs, facets[0]) if facets else [None]
    columns = facet_values(runs, facets[1]) if len(facets) > 1 else [None]
    for r, row_value in enumerate(rows):
        for c, column_value in enumerate(columns):
            keep = np.ones(len(runs), bool)
            title = []
            for facet, value in zip(facets, (row_value, column_value)):
                keep &= (as_text(runs[facet]) == value).to_numpy()
                title.append(f"{facet.removeprefix('params.')}={value}")
            yield r, c, ", ".join(title), runs[keep], (len(rows), len(columns))


def facet_values(runs: pd.DataFrame, facet: str) -> list[str]:
    """A facet's values as text: numbers in numeric order, names in the order the runs first give them
    (the sweep's order; a grid launched longest first gives its numbers in another)."""
    values = as_text(runs[facet])
    return list(dict.fromkeys(values.iloc[np.argsort(value_ranks(runs[facet]).to_numpy(), kind="stable")]))


def _colours(runs: pd.DataFrame, colour: str | None, labelled: list[str]) -> dict:
    """An ordered colormap over the colour axis's sorted values; without such axis, one categorical
    colour per value of the labelled params (the same value has the same colour in every panel)."""
    if colour is None:
        keys = pd.concat([as_text(runs[c]) for c in labelled], axis=1).apply(tuple, axis=1) if labelled \
            else pd.Series(list(runs.index), index=runs.index)
        order = list(dict.fromkeys(keys))
        return {i: plt.cm.tab10(order.index(key) % 10) for i, key in keys.items()}
    values, shades = _shades(runs, colour)
    return {i: shades[values.index(float(v))] for i, v in pd.to_numeric(runs[colour]).items()}


def _shades(runs: pd.DataFrame, colour: str) -> tuple[list[float], np.ndarray]:
    """The colour axis's sorted values and a viridis shade for each, by rank."""
    values = sorted(pd.to_numeric(runs[colour]).unique())
    return values, plt.cm.viridis(np.linspace(0, 0.9, max(len(values), 2)))[:len(values)]


PANEL_WIDTH, PANEL_HEIGHT = 3.6, 2.9  # inches
LEGEND_CHAR, TITLE_LINE = 0.075, 0.19  # inches: a legend label's character (small font), a title's line


def _legend_width(labels: list[str | None]) -> float:
    """The legend's column, in inches: as wide as its longest label (none without labels)."""
    longest = max((len(label) for label in labels if label), default=0)
    return 0.9 + LEGEND_CHAR * longest if longest else 0.3


def _grid(n_rows: int, n_columns: int, legend_width: float):
    """The panels, and the share of the figure's width they take (the legend has the rest)."""
    width = PANEL_WIDTH * n_columns + 0.4
    fig, axes = plt.subplots(n_rows, n_columns, figsize=(width + legend_width, PANEL_HEIGHT * n_rows + 0.6),
                             sharex=False, sharey=False, squeeze=False)  # a shared y range hid whole panels
    return fig, axes, width / (width + legend_width)


def _margins(fig, legend_at: float, title_lines: int) -> None:
    """Fixed margins, in inches, for the labels every panel grid has (one y label per row, one x label
    per column, a title of ``title_lines`` lines per panel, the figure's note above them): ``tight_layout``
    measured every tick label of every panel and took most of a report's time (13 of 22 s on a 36-run
    sweep)."""
    width, height = fig.get_size_inches()
    titles = TITLE_LINE * title_lines
    fig.subplots_adjust(left=1.05 / width, right=legend_at - 0.1 / width, bottom=0.6 / height,
                        top=1 - (0.3 + titles) / height, wspace=0.55 / (PANEL_WIDTH - 0.55),
                        hspace=(0.55 + titles) / (PANEL_HEIGHT - 0.7))


def _legend(fig, axes, runs: pd.DataFrame, colour: str | None, at: float) -> None:
    """One legend for the figure, outside the panels (it never covers data); a colour bar instead when
    the colour axis has more values than a legend can list (a 40-value sigma_w2 sweep)."""
    labels = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            labels.setdefault(label, handle)
    title = colour.rsplit(".", 1)[-1] if colour else None
    if labels and len(labels) <= 30:
        fig.legend(labels.values(), labels.keys(), loc="center left", bbox_to_anchor=(at, 0.5),
                   fontsize="small", title=title)
    elif labels and colour:
        values, shades = _shades(runs, colour)
        height = fig.get_size_inches()[1]
        tall = min(0.5, 3.0 / height)  # at most 3 inches, beside the first row of panels
        bar = fig.colorbar(ScalarMappable(BoundaryNorm(np.arange(len(values) + 1), len(values)), ListedColormap(shades)),
                           cax=fig.add_axes([at + 0.1 * (1 - at), 1 - 0.8 / height - tall, 0.12 * (1 - at), tall]))
        ticks = np.unique(np.linspace(0, len(values) - 1, min(len(values), 6)).round().astype(int))
        bar.set_ticks(ticks + 0.5, labels=[f"{values[i]:g}" for i in ticks])
        bar.set_label(title)


def _seed_groups(runs: pd.DataFrame, swept: list[str]) -> list[list[int]]:
    """Run indices grouped by every swept param but ``seed``: one group per curve (one run each
    when the sweep does not vary the seed)."""
    others = [c for c in swept if c != "params.seed"]
    if "params.seed" not in swept or not others:
        return [[i] for i in runs.index] if "params.seed" not in swept else [list(runs.index)]
    keys = pd.concat([as_text(runs[c]) for c in others], axis=1).apply(tuple, axis=1)
    return [list(group.index) for _, group in runs.groupby(keys, sort=False)]


def seed_band(ys: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(geometric mean, mean / g, mean * g)`` over the seeds' curves ``ys`` (cut to the shortest),
    ``g`` = 10 ** (sample std of log10): the report's axes are logarithmic.  Non-positive and
    non-finite points are left out of their step's mean; a step none of the seeds has is NaN."""
    n = min(len(y) for y in ys)
    logs = np.log10(np.array([plottable(y)[:n] for y in ys]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a step where every seed diverged: NaN, not drawn
        mean, spread = np.nanmean(logs, axis=0), np.nanstd(logs, axis=0, ddof=1)
    return 10 ** mean, 10 ** (mean - spread), 10 ** (mean + spread)


def curve(ax, x, ys: list, colour, label: str | None = None, **style) -> None:
    """One line; over several seeds ``seed_band``'s mean line and band."""
    if len(ys) == 1:
        ax.plot(x, plottable(ys[0]), color=colour, label=label, **style)
        return
    mean, low, high = seed_band(ys)
    x = np.asarray(x)[:len(mean)]
    ax.plot(x, mean, color=colour, label=label, **style)
    ax.fill_between(x, low, high, color=colour, alpha=0.15, linewidth=0)


def small_multiples(runs, data: dict, swept, path: Path, draw, xlabel: str, ylabel: str, yscale: str = "log",
                    missing: str = "no data") -> Path:
    """One panel per swept group choice; in each, ``draw(ax, items, colour, label)`` per curve, where
    ``items`` are the ``data`` (history, distributions) of the curve's runs: one run, or its seeds.  A
    panel none of whose runs has data says ``missing``."""
    axes_swept = [c for c in swept if c != "params.seed"]
    colour, facets, labelled = layout(runs, axes_swept)
    colours = _colours(runs, colour, labelled)
    panels = list(_panels(runs, facets))
    groups = _seed_groups(runs, swept)
    run_id = runs["run_id"].to_dict()  # index label -> run id
    curves = [(group, [data[run_id[i]] for i in group if data.get(run_id[i]) is not None]) for group in groups]
    if colour:  # the legend lists the lines in the colour axis's order (a search's trials come in any)
        along = pd.to_numeric(runs[colour])
        curves.sort(key=lambda curve: along[curve[0][0]])
    # a label says what the panel's title does not; a curve alone in its panel needs none
    named = run_labels(runs, [colour, *labelled] if colour else labelled) if colour or labelled else None
    labels = {group[0]: named[runs.index.get_loc(group[0])] if named else None for group, _ in curves}
    fig, axes, legend_at = _grid(*panels[0][4], _legend_width(list(labels.values())))
    titles = {}
    for r, c, title, subset, _ in panels:
        ax = axes[r, c]
        in_panel = set(subset.index)
        for group, items in curves:  # each curve's data looked up once, not once per panel
            if group[0] in in_panel and items:
                draw(ax, items, colours[group[0]], labels[group[0]])
        ax.set_yscale(yscale)
        if yscale == "log":
            low, high = ax.get_ylim()
            decades = low > 0 and high / low > 100
            if decades:  # decades only: each minor tick is an object to draw (8 a decade: most of a figure's time)
                ax.yaxis.set_major_locator(LogLocator(numticks=6))
                ax.yaxis.set_minor_locator(NullLocator())
            else:  # within two decades: minor ticks at 2 and 5, labelled, not at every integer
                ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
            plain_log_labels(ax.yaxis, every_minor=not decades)
        if not ax.has_data():  # nothing drawn there (a plain net's per-block profile): no axis to read
            if not ax.texts:
                ax.text(0.5, 0.5, missing, transform=ax.transAxes, ha="center", va="center", color="grey")
            ax.tick_params(which="both", left=False, bottom=False, labelleft=False, labelbottom=False)
        titles[r, c] = textwrap.wrap(title, 40)
        ax.set_title("\n".join(titles[r, c]), fontsize="medium")  # never into its neighbour
        ax.tick_params(labelsize="small")
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    for above, below in zip(axes[:-1].flat, axes[1:].flat):  # a column's steps or layers said once, at its foot
        if below.has_data() and above.get_xlim() == below.get_xlim():
            above.tick_params(labelbottom=False)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize="small")
    seeds = runs["params.seed"].nunique() if "params.seed" in swept else 1
    note = "each panel has its own y range"
    fig.suptitle(f"geometric mean over {seeds} seeds, band +-1 std; {note}" if seeds > 1 else note, fontsize="small",
                 y=1 - 0.12 / fig.get_size_inches()[1])
    _margins(fig, legend_at, max((len(lines) for lines in titles.values()), default=1))
    _legend(fig, axes, runs, colour, legend_at)
    return save_figure(fig, path, margins=False)

"""Compare the runs of one experiment: a summary table and figures, from MLflow.

    python -m runner.report vanishing_depth                 # the latest sweep of that experiment
    python -m runner.report vanishing_depth --all           # every run in it
    python -m runner.report glorot2010 --uri http://127.0.0.1:5000

Writes ``outputs/reports/<experiment>/``: ``summary.csv``, ``summary.md``, ``pivot_*.csv``, ``pivots.md``,
``report.html`` (everything on one self-contained page), ``grad_profile.png``
(gradient norm vs layer at the first and the last logged step, one line per run), ``loss_curves.png``
and ``grad_heatmaps.png`` (log10 gradient norm over steps x layers, one panel per run), and logs
them to MLflow: into the sweep's parent run (folder ``report``) when the report covers one sweep,
else as a run named ``report`` (tag ``kind=report``) in the same experiment.
Histories are read in bulk: one ``history.csv`` artifact per run, never one request per point.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from backprop_core.distributions import magnitude_histogram

from .plots import distribution_bands, layer_columns, plottable, plt, save_figure
from .report_page import html_page
from .tables import as_text, markdown, pivot_tables, summary_table
from .stores import resolve_uri
from .tracking import close_orphans, open_store, sweep_run

NOT_SWEPT = {"description"}


def load_runs(client: MlflowClient, experiment: str, every_sweep: bool = False) -> pd.DataFrame:
    """One row per run of ``experiment`` (its latest sweep unless ``every_sweep``), report runs left out."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = ", ".join(sorted(e.name for e in client.search_experiments()))
        raise SystemExit(f"report: no experiment {experiment!r} in the store; experiments: {names or 'none'}")
    runs = [r for r in client.search_runs([found.experiment_id], max_results=50000)
            if r.data.tags.get("kind") not in ("report", "sweep")]  # the jobs' runs, not parents or reports
    if not runs:
        raise SystemExit(f"report: experiment {experiment!r} has no runs")
    rows = []
    for run in runs:
        row = {"run_id": run.info.run_id, "run_name": run.info.run_name, "start_time": run.info.start_time,
               "status": run.data.tags.get("status", "?"), "sweep_id": run.data.tags.get("sweep_id"),
               "job_num": int(run.data.tags.get("job_num", 0))}
        row |= {f"params.{k}": v for k, v in run.data.params.items()}
        row |= {f"metrics.{k}": v for k, v in run.data.metrics.items()}
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not every_sweep and frame["sweep_id"].notna().any():
        latest = frame.dropna(subset=["sweep_id"]).sort_values("start_time")["sweep_id"].iloc[-1]
        frame = frame[frame["sweep_id"] == latest]
    return frame.sort_values(["job_num", "start_time"]).reset_index(drop=True)


def swept_columns(runs: pd.DataFrame) -> list[str]:
    """The params that differ between the runs: what the sweep varied.  A parameter of one option
    (``init.std`` when the sweep also varies ``init``) is left out: its "null" in the other options'
    runs would split them into a meaningless panel."""
    params = [c for c in runs.columns if c.startswith("params.") and c.removeprefix("params.") not in NOT_SWEPT]
    swept = []
    for column in params:
        values = as_text(runs[column])
        group = column.removeprefix("params.").split(".")[0]
        an_options_own = "." in column.removeprefix("params.") and runs[column].isna().any() and \
            f"params.{group}" in params and as_text(runs[f"params.{group}"]).nunique() > 1
        # a group choice and its option's name (init / init.name) say the same: keep one
        if values.nunique() > 1 and not an_options_own and not any(values.equals(as_text(runs[kept])) for kept in swept):
            swept.append(column)
    return swept


def load_histories(client: MlflowClient, runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each run's ``history.csv`` (one download a run)."""
    return _load_artifact(client, runs, "history.csv", pd.read_csv)


def load_distributions(client: MlflowClient, runs: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """Each ``tracking.detail=full`` run's ``distributions.npz`` (runs without one are left out)."""
    def read(path: str) -> dict[str, np.ndarray]:
        with np.load(path) as arrays:
            return dict(arrays)

    return _load_artifact(client, runs, "distributions.npz", read)


def _load_artifact(client: MlflowClient, runs: pd.DataFrame, name: str, read) -> dict:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per file is noise
    loaded = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run_id in runs["run_id"]:
            try:
                path = client.download_artifacts(run_id, name, tmp)
            except (MlflowException, OSError):  # a failed (or standard-detail) run has none; it keeps its table row
                continue
            loaded[run_id] = read(path)
    return loaded


def _label(runs: pd.DataFrame, i: int, swept: list[str]) -> str:
    return ", ".join(f"{c.removeprefix('params.').rsplit('.', 1)[-1]}={as_text(runs[c]).iloc[i]}" for c in swept) \
        or runs["run_name"].iloc[i]


def _layout(runs: pd.DataFrame, swept: list[str]) -> tuple[str | None, list[str], list[str]]:
    """``(colour axis, facet axes, label axes)``: lines are coloured along an ordered axis (the numeric
    swept param with the most values, e.g. depth) and panels split by up to two other swept params
    (rows, columns), group choices first; anything left goes into the line labels."""
    numeric = [c for c in swept if pd.to_numeric(runs[c], errors="coerce").notna().all()]
    colour = max(numeric, key=lambda c: runs[c].nunique()) if numeric else None
    rest = sorted((c for c in swept if c != colour), key=lambda c: ("." in c, as_text(runs[c]).nunique()))
    return colour, rest[:2], rest[2:]


def _panels(runs: pd.DataFrame, facets: list[str]):
    """``(row, column, title, subset)`` for every panel of the facet grid."""
    rows = list(dict.fromkeys(as_text(runs[facets[0]]))) if facets else [None]
    columns = list(dict.fromkeys(as_text(runs[facets[1]]))) if len(facets) > 1 else [None]
    for r, row_value in enumerate(rows):
        for c, column_value in enumerate(columns):
            keep = np.ones(len(runs), bool)
            title = []
            for facet, value in zip(facets, (row_value, column_value)):
                keep &= (as_text(runs[facet]) == value).to_numpy()
                title.append(f"{facet.removeprefix('params.')}={value}")
            yield r, c, ", ".join(title), runs[keep], (len(rows), len(columns))


def _colours(runs: pd.DataFrame, colour: str | None) -> dict:
    """An ordered colormap over the colour axis's sorted values (a categorical one without such axis)."""
    if colour is None:
        return {i: plt.cm.tab10(k % 10) for k, i in enumerate(runs.index)}
    values = sorted(pd.to_numeric(runs[colour]).unique())
    shades = plt.cm.viridis(np.linspace(0, 0.9, max(len(values), 2)))
    return {i: shades[values.index(float(v))] for i, v in pd.to_numeric(runs[colour]).items()}


PANEL_WIDTH, PANEL_HEIGHT, LEGEND_WIDTH = 3.6, 2.9, 2.0  # inches; the legend gets a column of its own


def _grid(n_rows: int, n_columns: int):
    """The panels, and the share of the figure's width they take (the legend has the rest)."""
    width = PANEL_WIDTH * n_columns + 0.4
    fig, axes = plt.subplots(n_rows, n_columns, figsize=(width + LEGEND_WIDTH, PANEL_HEIGHT * n_rows + 0.6),
                             sharex=False, sharey=True, squeeze=False)
    return fig, axes, width / (width + LEGEND_WIDTH)


def _legend(fig, axes, colour: str | None, at: float) -> None:
    """One legend for the figure, outside the panels (it never covers data)."""
    labels = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            labels.setdefault(label, handle)
    if labels and len(labels) <= 30:
        title = colour.rsplit(".", 1)[-1] if colour else None
        fig.legend(labels.values(), labels.keys(), loc="center left", bbox_to_anchor=(at, 0.5),
                   fontsize="small", title=title)


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


def _curve(ax, x, ys: list, colour, label: str | None = None, **style) -> None:
    """One line; over several seeds ``seed_band``'s mean line and band."""
    if len(ys) == 1:
        ax.plot(x, plottable(ys[0]), color=colour, label=label, **style)
        return
    mean, low, high = seed_band(ys)
    x = np.asarray(x)[:len(mean)]
    ax.plot(x, mean, color=colour, label=label, **style)
    ax.fill_between(x, low, high, color=colour, alpha=0.15, linewidth=0)


def _small_multiples(runs, data: dict, swept, path: Path, draw, xlabel: str, ylabel: str) -> Path:
    """One panel per swept group choice; in each, ``draw(ax, items, colour, label)`` per curve, where
    ``items`` are the ``data`` (history, distributions) of the curve's runs: one run, or its seeds."""
    axes_swept = [c for c in swept if c != "params.seed"]
    colour, facets, labelled = _layout(runs, axes_swept)
    colours = _colours(runs, colour)
    panels = list(_panels(runs, facets))
    groups = _seed_groups(runs, swept)
    fig, axes, legend_at = _grid(*panels[0][4])
    for r, c, title, subset, _ in panels:
        ax = axes[r, c]
        for group in groups:
            items = [data[run_id] for run_id in runs.loc[group, "run_id"] if data.get(run_id) is not None]
            if group[0] in subset.index and items:
                draw(ax, items, colours[group[0]], _label(runs, group[0], [colour] if colour else labelled))
        ax.set_yscale("log")
        ax.set_title(title, fontsize="medium")
        ax.tick_params(labelsize="small")
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize="small")
    seeds = runs["params.seed"].nunique() if "params.seed" in swept else 1
    if seeds > 1:
        fig.suptitle(f"geometric mean over {seeds} seeds, band +-1 std", fontsize="small")
    fig.tight_layout(rect=(0, 0, legend_at, 1))
    _legend(fig, axes, colour, legend_at)
    return save_figure(fig, path, margins=False)


def plot_profiles(runs, histories, swept, path: Path, metric: str = "grad_norm") -> Path:
    """``metric`` against layer, one line per run: solid at step 0, dashed at the closing step."""
    def draw(ax, items, colour, label):
        columns = layer_columns(items[0], metric)
        layers = np.arange(1, len(columns) + 1)
        _curve(ax, layers, [h.iloc[0][columns].to_numpy(float) for h in items], colour, label, marker=".")
        _curve(ax, layers, [h.iloc[-1][columns].to_numpy(float) for h in items], colour, linestyle="--", alpha=0.6)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    histories = {k: h for k, h in histories.items() if not h.empty}
    return _small_multiples(runs, histories, swept, path, draw, "layer (1 = input side)",
                            f"{metric} (solid: step 0, dashed: closing)")


def plot_losses(runs, histories, swept, path: Path) -> Path:
    """Loss over steps, one line per run: training solid, validation dotted."""
    def draw(ax, items, colour, label):
        _curve(ax, items[0]["step"], [h["train/loss"].to_numpy(float) for h in items], colour, label)
        if "val/loss" in items[0]:
            _curve(ax, items[0]["step"], [h["val/loss"].to_numpy(float) for h in items], colour,
                   linestyle=":", alpha=0.7)

    histories = {k: h for k, h in histories.items() if not h.empty}
    return _small_multiples(runs, histories, swept, path, draw, "step", "loss (solid: train, dotted: val)")


def plot_grad_distributions(runs, distributions, swept, path: Path) -> Path:
    """|dL/dW| against layer at step 0 from the runs' histograms: median line, 16-84 % band."""
    def draw(ax, items, colour, label):
        bands = [distribution_bands(*magnitude_histogram(d["grad"][0])) for d in items]
        layers = np.arange(1, len(bands[0]) + 1)
        _curve(ax, layers, [b[:, 2] for b in bands], colour, label, marker=".")
        low, high = plottable(np.mean([b[:, 1] for b in bands], axis=0)), plottable(np.mean([b[:, 3] for b in bands], axis=0))
        ax.fill_between(layers, low, high, color=colour, alpha=0.15, linewidth=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    return _small_multiples(runs, distributions, swept, path, draw, "layer (1 = input side)",
                            "|dL/dW| at step 0: median, 16-84 % band")


def plot_heatmaps(runs, histories, swept, path: Path) -> Path:
    """log10 gradient norm over steps (x) and layers (y), one panel per run, on one colour scale."""
    maps = {}
    for run_id, history in histories.items():
        if not history.empty:
            maps[run_id] = np.log10(plottable(history[layer_columns(history, "grad_norm")]))
    finite = np.concatenate([m[np.isfinite(m)] for m in maps.values()] or [np.zeros(1)])
    low, high = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    n = len(runs)
    cols = min(n, 6)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols + 1.2, 2.5 * rows), squeeze=False)
    # fixed spacing: a constrained layout of 100 panels takes longer than drawing them
    fig.subplots_adjust(left=0.04, right=0.86, bottom=0.3 / rows, top=1 - 0.45 / rows, hspace=0.55, wspace=0.25)
    for ax in axes.flat[n:]:
        ax.axis("off")
    image = None
    for ax, (i, run_id) in zip(axes.flat, enumerate(runs["run_id"])):
        ax.set_title(_label(runs, i, swept).replace(", ", "\n"), fontsize=6)
        ax.tick_params(labelsize=5)
        if run_id not in maps:
            continue
        steps = histories[run_id]["step"]
        layers = maps[run_id].shape[1]
        image = ax.imshow(maps[run_id].T, aspect="auto", origin="lower", cmap="magma", vmin=low, vmax=high,
                          interpolation="nearest",
                          extent=[steps.iloc[0], max(steps.iloc[-1], steps.iloc[0] + 1), 0.5, layers + 0.5])
    if image is not None:
        fig.colorbar(image, cax=fig.add_axes([0.89, 0.2, 0.015, 0.6]), label="log10 ||dL/dW||  (y: layer, x: step)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(experiment: str, uri: str | None = None, out: Path | None = None, every_sweep: bool = False,
           log_to_mlflow: bool = True) -> Path:
    uri, _, _ = resolve_uri(uri)
    client = open_store(uri)  # under the store's lock, like every command
    close_orphans(client)
    runs = load_runs(client, experiment, every_sweep)
    histories = load_histories(client, runs)
    swept = swept_columns(runs)
    folder = out or Path("outputs") / "reports" / experiment
    folder.mkdir(parents=True, exist_ok=True)

    table = summary_table(runs, swept)
    table.to_csv(folder / "summary.csv", index=False)
    (folder / "summary.md").write_text(markdown(table))
    files = [folder / "summary.csv", folder / "summary.md"]
    pivots = pivot_tables(table, [c.removeprefix("params.") for c in swept])
    if pivots:
        for metric, pivot in pivots.items():
            name = metric.replace("/", "_")
            pivot.to_csv(folder / f"pivot_{name}.csv")
            files.append(folder / f"pivot_{name}.csv")
        (folder / "pivots.md").write_text("\n".join(f"### {metric}\n\n{markdown(pivot.reset_index())}"
                                                    for metric, pivot in pivots.items()))
        files.append(folder / "pivots.md")
    files += [
             plot_profiles(runs, histories, swept, folder / "grad_profile.png"),
             plot_losses(runs, histories, swept, folder / "loss_curves.png"),
             plot_heatmaps(runs, histories, swept, folder / "grad_heatmaps.png")]
    if any(layer_columns(h, "delta_norm") for h in histories.values()):
        files.append(plot_profiles(runs, histories, swept, folder / "delta_profile.png", "delta_norm"))
    if any(layer_columns(h, "act_std") for h in histories.values()):
        files.append(plot_profiles(runs, histories, swept, folder / "act_std_profile.png", "act_std"))
    distributions = load_distributions(client, runs)
    if distributions:
        files.append(plot_grad_distributions(runs, distributions, swept, folder / "grad_distributions.png"))

    figures = [path for path in files if path.suffix == ".png"]
    page = folder / "report.html"
    page.write_text(html_page(f"{experiment}: {len(runs)} runs", f"swept: {', '.join(c.removeprefix('params.') for c in swept) or 'nothing'}",
                              {"summary": table.set_index("run")} | {f"pivot: {m}": p for m, p in pivots.items()},
                              figures))
    files.append(page)

    if log_to_mlflow:
        _log_report(client, experiment, runs, files)
    print(f"report: {len(runs)} runs of {experiment!r} -> {folder}")
    print(markdown(table))
    return folder


def _log_report(client: MlflowClient, experiment: str, runs: pd.DataFrame, files: list[Path]) -> None:
    """Into the sweep's parent run when the report covers one sweep (folder ``report``); otherwise
    into a run of its own named ``report`` (tag ``kind=report``)."""
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    sweeps = runs["sweep_id"].dropna().unique()
    parent = sweep_run(client, experiment_id, sweeps[0]) if len(sweeps) == 1 and runs["sweep_id"].notna().all() \
        else None
    if parent is not None:
        for path in files:
            client.log_artifact(parent.info.run_id, str(path), "report")
        return
    run = client.create_run(experiment_id, run_name="report", tags={"kind": "report", "runs": str(len(runs))})
    status = "FAILED"
    try:
        for path in files:
            client.log_artifact(run.info.run_id, str(path), "report")
        status = "FINISHED"
    finally:
        client.set_terminated(run.info.run_id, status)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runner.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", help="MLflow experiment name (a preset's name, or 'default')")
    parser.add_argument("--uri", help="tracking URI (default: $MLFLOW_TRACKING_URI, else ./outputs/mlflow.db)")
    parser.add_argument("--out", type=Path, help="folder (default: outputs/reports/<experiment>)")
    parser.add_argument("--all", action="store_true", help="every run, not only the latest sweep")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log the report to MLflow")
    args = parser.parse_args(argv)
    report(args.experiment, args.uri, args.out, args.all, not args.no_mlflow)


if __name__ == "__main__":
    main(sys.argv[1:])

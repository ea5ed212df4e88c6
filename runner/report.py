"""Compare the runs of one experiment: a summary table and figures, from MLflow.

    python -m runner.report vanishing_depth                 # the latest sweep of that experiment
    python -m runner.report vanishing_depth --all           # every run in it
    python -m runner.report glorot2010 --uri http://127.0.0.1:5000
    python -m runner.report vanishing_depth --run-figures   # and each run's own plots/*.png, drawn now

Writes ``outputs/reports/<experiment>/``: ``summary.csv``, ``summary.md``, ``pivot_*.csv``, ``pivots.md``,
``report.html`` (everything on one self-contained page), ``grad_profile.png``
(gradient norm vs layer at the first and the last logged step, one line per run), ``loss_curves.png``
and ``grad_heatmaps.png`` (log10 gradient norm over steps x layers, one panel per run), and logs
them to MLflow: into the sweep's parent run (folder ``report``) when the report covers one sweep,
else as a run named ``report`` (tag ``kind=report``) in the same experiment.
Histories are read in bulk: per run one artifact listing and one download per file it has, never one
request per point.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import textwrap
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from backprop_core.distributions import magnitude_histogram

from .errors import ConfigError, did_you_mean
from .facets import curve, run_label, small_multiples
from .plots import distribution_bands, layer_columns, plottable, plt
from .report_page import html_page
from .tables import as_numbers, as_text, markdown, ordered_axis, pivot_tables, summary_table, verdicts
from .stores import check_store_exists, path_part, resolve_uri
from .tracking import close_orphans, log_image, open_store, sweep_run

NOT_SWEPT = {"description"}
HIDDEN_ONLY = ("act_std", "act_mean", "saturation")  # per-layer statistics of activations: the output layer apart


def load_runs(client: MlflowClient, experiment: str, every_sweep: bool = False,
              sweep_id: str | None = None) -> pd.DataFrame:
    """One row per run of ``experiment`` (sweep ``sweep_id``, else its latest sweep unless ``every_sweep``),
    report runs left out."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments()
                       if client.search_runs([e.experiment_id], max_results=1))
        known = f"experiments with runs: {', '.join(names) or 'none'}{did_you_mean(experiment, names)}"
        raise ConfigError(f"experiment={experiment}", f"not in the store {client.tracking_uri}; {known}")
    query = f"tags.sweep_id = '{sweep_id}'" if sweep_id else ""
    runs = [r for r in client.search_runs([found.experiment_id], query, max_results=50000)
            if r.data.tags.get("kind") not in ("report", "sweep")]  # the jobs' runs, not parents or reports
    if not runs:
        raise ConfigError(f"experiment={experiment}", "has no runs to compare")
    rows = []
    for run in runs:
        row = {"run_id": run.info.run_id, "run_name": run.info.run_name, "start_time": run.info.start_time,
               "artifact_uri": run.info.artifact_uri,
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
        # a parameter of the chosen option (init.std, optimizer.lr at each optimizer's default) follows
        # the group's choice when the sweep varies it: not an axis of its own
        an_options_own = "." in column.removeprefix("params.") and f"params.{group}" in params and \
            as_text(runs[f"params.{group}"]).nunique() > 1 and _determined_by(values, as_text(runs[f"params.{group}"]))
        # a group choice and its option's name (init / init.name), or a value derived from a swept one
        # (init.sigma_w2 = ${critical_sigma_w2:${activation.name},...}), say the same: keep one
        if values.nunique() > 1 and not an_options_own and not any(_same_split(values, as_text(runs[kept]))
                                                                    for kept in swept):
            swept.append(column)
    return swept


def _determined_by(values: pd.Series, choice: pd.Series) -> bool:
    """Whether each choice comes with one value."""
    return pd.DataFrame({"v": values, "c": choice}).drop_duplicates()["c"].is_unique


def _same_split(a: pd.Series, b: pd.Series) -> bool:
    """Whether two columns split the runs into the same groups (one value of ``a`` to one of ``b``)."""
    pairs = pd.DataFrame({"a": a, "b": b}).drop_duplicates()
    return pairs["a"].is_unique and pairs["b"].is_unique


def _read_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as arrays:
        return dict(arrays)


READERS = {  # the run artifacts the report reads, and how
    "history.csv": pd.read_csv,
    "distributions.npz": _read_npz,  # tracking.detail=full
    "jacobian.npz": lambda path: _read_npz(path)["singular_values"],  # trainer.jacobian_samples
    "theory.csv": pd.read_csv,  # runs with a mean-field prediction
}


def load_artifacts(client: MlflowClient, runs: pd.DataFrame) -> dict[str, dict]:
    """``{artifact: {run_id: its contents}}`` for the artifacts in ``READERS``: one listing a run, then
    one download per artifact the run has (a failed run may have none; it keeps its table row)."""
    loaded = {name: {} for name in READERS}
    with tempfile.TemporaryDirectory() as tmp:
        for run_id, artifact_uri in zip(runs["run_id"], runs["artifact_uri"]):
            local = Path(url2pathname(urlparse(artifact_uri).path)) if artifact_uri.startswith("file:") else None
            try:
                if local is not None:  # a local artifact store: read the files where they are, no copy
                    present = {p.name for p in local.iterdir()} & set(READERS) if local.is_dir() else set()
                    for name in present:
                        loaded[name][run_id] = READERS[name](local / name)
                    continue
                present = {f.path for f in client.list_artifacts(run_id)} & set(READERS)
                for name in present:
                    loaded[name][run_id] = READERS[name](client.download_artifacts(run_id, name, tmp))
            except (MlflowException, OSError):
                continue
    return loaded


def plot_profiles(runs, histories, swept, path: Path, metric: str = "grad_norm") -> Path:
    """``metric`` against layer, one line per run: solid at step 0, dashed at the closing step.  An
    activation statistic is drawn over the hidden layers only: the output layer's (the prediction's
    spread, near 0 when the outputs agree) would read as the signal dying."""
    hidden_only = metric in HIDDEN_ONLY

    def draw(ax, items, colour, label):
        columns = layer_columns(items[0], metric)[:-1 if hidden_only else None]
        layers = np.arange(1, len(columns) + 1)
        curve(ax, layers, [h.iloc[0][columns].to_numpy(float) for h in items], colour, label, marker=".")
        curve(ax, layers, [h.iloc[-1][columns].to_numpy(float) for h in items], colour, linestyle="--", alpha=0.6)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    histories = {k: h for k, h in histories.items() if not h.empty}
    xlabel = "hidden layer (the output layer left out)" if hidden_only else "layer (1 = input side)"
    return small_multiples(runs, histories, swept, path, draw, xlabel, f"{metric} (solid: step 0, dashed: closing)")


def plot_losses(runs, histories, swept, path: Path) -> Path:
    """Loss over steps, one line per run: training solid, validation dotted."""
    def draw(ax, items, colour, label):
        curve(ax, items[0]["step"], [h["train/loss"].to_numpy(float) for h in items], colour, label)
        if "val/loss" in items[0]:
            curve(ax, items[0]["step"], [h["val/loss"].to_numpy(float) for h in items], colour,
                   linestyle=":", alpha=0.7)

    histories = {k: h for k, h in histories.items() if not h.empty}
    return small_multiples(runs, histories, swept, path, draw, "step", "loss (solid: train, dotted: val)")


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
    column per value of the first swept axis (depth, in a depth sweep), a row per combination of the others."""
    maps = {}
    for run_id, history in histories.items():
        if not history.empty:
            maps[run_id] = np.log10(plottable(history[layer_columns(history, "grad_norm")]))
    finite = np.concatenate([m[np.isfinite(m)] for m in maps.values()] or [np.zeros(1)])
    low, high = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    grid = heatmap_grid(runs, swept)
    rows, cols = grid.shape
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 1.6, 2.2 * rows + 0.6), squeeze=False)
    # fixed spacing: a constrained layout of 100 panels takes longer than drawing them
    fig.subplots_adjust(left=0.7 / (2.6 * cols + 1.6), right=0.86, bottom=0.55 / (2.2 * rows + 0.6),
                        top=1 - 0.45 / (2.2 * rows + 0.6), hspace=0.6, wspace=0.3)
    image = None
    for (r, c), i in np.ndenumerate(grid):
        ax = axes[r, c]
        if i < 0:
            ax.axis("off")
            continue
        run_id = runs["run_id"].iloc[i]
        ax.set_title("\n".join(textwrap.wrap(run_label(runs, i, swept), 34)), fontsize=6)
        ax.tick_params(labelsize=5)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if r == rows - 1:
            ax.set_xlabel("step", fontsize=6)
        if c == 0:
            ax.set_ylabel("layer", fontsize=6)
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


def heatmap_grid(runs: pd.DataFrame, swept: list[str]) -> np.ndarray:
    """Run indices (-1: no run) in a grid: a column per value of the first swept axis, in numeric order
    where it is numeric, a row per combination of the other axes; runs of an unswept report in rows of 6."""
    if not swept:
        n, cols = len(runs), min(len(runs), 6)
        return np.array([i if i < n else -1 for i in range(math.ceil(n / cols) * cols)]).reshape(-1, cols)
    def order(column):
        values = as_text(runs[column])
        numbers = as_numbers(values)
        return values if numbers is None else numbers
    column_axis = ordered_axis(runs, swept) or swept[0]  # depth across, as the profiles' colours
    row_axes = [c for c in swept if c != column_axis]
    column_values = sorted(order(column_axis).unique())
    keys = runs[row_axes].astype(str).agg("|".join, axis=1) if row_axes else pd.Series([""] * len(runs))
    by_rows = pd.DataFrame({c: order(c) for c in row_axes}).sort_values(row_axes).index if row_axes else keys.index
    row_values = list(dict.fromkeys(keys.loc[by_rows]))
    grid = -np.ones((len(row_values), len(column_values)), dtype=int)
    for i, (value, key) in enumerate(zip(order(column_axis), keys)):
        cell = row_values.index(key), column_values.index(value)
        if grid[cell] >= 0:  # two runs in one cell (seeds, an axis not swept): a panel each, in rows of 6
            return heatmap_grid(runs, [])
        grid[cell] = i
    return grid


def log_missing_run_figures(client: MlflowClient, runs: pd.DataFrame) -> int:
    """Each run's own figures (``plots/*.png`` and their images) where its job left them out, as a sweep's
    jobs do unless ``tracking.run_figures=always``: drawn from the run's ``history.csv`` (and
    ``distributions.npz``) and logged to the run.  Returns how many runs got them."""
    from .plots import draw_run_figures

    drawn = 0
    with tempfile.TemporaryDirectory() as tmp:
        for run_id, name in zip(runs["run_id"], runs["run_name"]):
            files = {f.path for f in client.list_artifacts(run_id)}
            if "plots" in files or "history.csv" not in files:
                continue
            folder = Path(tmp) / run_id
            for file in files & {"history.csv", "distributions.npz"}:
                client.download_artifacts(run_id, file, str(folder))
            paths = draw_run_figures(folder, name)
            last_step = int(pd.read_csv(folder / "history.csv", usecols=["step"])["step"].iloc[-1]) if paths else 0
            for path in paths:
                client.log_artifact(run_id, str(path), "plots")
                log_image(client, run_id, path, last_step)
            drawn += bool(paths)
    return drawn


def report(experiment: str, uri: str | None = None, out: Path | None = None, every_sweep: bool = False,
           log_to_mlflow: bool = True, run_figures: bool = False, sweep_id: str | None = None,
           quiet: bool = False) -> Path:
    """Write the report of ``experiment``'s runs (sweep ``sweep_id``, or the latest) into ``out``; log it
    to MLflow (the sweep's parent run, its figures also as image records); returns the folder."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per downloaded file is noise
    given = uri
    uri, _, source = resolve_uri(uri)
    where = f"--uri={given}" if given else source if os.environ.get("MLFLOW_TRACKING_URI") else "no --uri"
    check_store_exists(uri, where)  # a report reads a store, never creates one
    client = open_store(uri, where, create=False)  # under the store's lock, like every command
    close_orphans(client)
    runs = load_runs(client, experiment, every_sweep, sweep_id)
    if run_figures:
        print(f"report: drew the own figures of {log_missing_run_figures(client, runs)} of {len(runs)} runs")
    artifacts = load_artifacts(client, runs)
    histories = artifacts["history.csv"]
    swept = swept_columns(runs)
    folder = out or Path("outputs") / "reports" / path_part(experiment)
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
    tasks = [(plot_heatmaps, runs, histories, swept, folder / "grad_heatmaps.png"),  # the longest first
             (plot_profiles, runs, histories, swept, folder / "grad_profile.png"),
             (plot_losses, runs, histories, swept, folder / "loss_curves.png")]
    for metric, name in (("delta_norm", "delta_profile.png"), ("act_std", "act_std_profile.png")):
        if any(layer_columns(h, metric) for h in histories.values()):
            tasks.append((plot_profiles, runs, histories, swept, folder / name, metric))
    if artifacts["distributions.npz"]:
        tasks.append((plot_grad_distributions, runs, artifacts["distributions.npz"], swept,
                      folder / "grad_distributions.png"))
    tasks += _theory_figures(runs, artifacts, swept, folder)
    files += [path for path in draw_figures(tasks) if path is not None]

    figures = sorted((path for path in files if path.suffix == ".png"), key=lambda p: p.name != "grad_profile.png")
    page = folder / "report.html"
    page.write_text(html_page(f"{experiment}: {len(runs)} runs", f"swept: {', '.join(c.removeprefix('params.') for c in swept) or 'nothing'}",
                              {"summary": table.set_index("run")} | {f"pivot: {m}": p for m, p in pivots.items()},
                              figures, verdicts(table, [c.removeprefix("params.") for c in swept])))
    files.append(page)

    if log_to_mlflow:
        _log_report(client, experiment, runs, files)
    if not quiet:
        print(f"report: {len(runs)} runs of {experiment!r} -> {folder}")
        print(markdown(table))
    return folder


def _theory_figures(runs: pd.DataFrame, artifacts: dict[str, dict], swept: list[str], folder: Path) -> list[tuple]:
    """The tasks that draw the phase diagram (a sigma_w2 x depth sweep), the Jacobian spectra (runs with
    ``trainer.jacobian_samples``), the predicted against measured gradient slopes and the length map."""
    from . import theory_figures as figures

    tasks = [(figures.plot_phase_diagram, runs, folder / "phase_diagram.png"),
             (figures.plot_slopes, runs, folder / "grad_slopes.png")]
    if artifacts["jacobian.npz"]:
        tasks.append((figures.plot_spectra, runs, artifacts["jacobian.npz"], swept, folder / "jacobian_spectra.png"))
    if artifacts["theory.csv"]:
        tasks.append((figures.plot_lengths, runs, artifacts["theory.csv"], swept, folder / "length_map.png"))
    return tasks


def draw_figures(tasks: list[tuple]) -> list[Path | None]:
    """``function(*args)`` for each task, on every core: the figures are independent, and drawing them
    is most of a report's time (matplotlib, one core each).  Children are forked: they start with the
    data and matplotlib already loaded (a fresh interpreter would spend ~1.5 s importing them)."""
    workers = min(len(tasks), os.cpu_count() or 1)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [_draw_task(task) for task in tasks]
    with multiprocessing.get_context("fork").Pool(workers) as pool:  # one task at a time: they differ in cost
        return list(pool.imap(_draw_task, tasks, chunksize=1))


def _draw_task(task: tuple) -> Path | None:
    function, *args = task
    return function(*args)


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
            if path.suffix == ".png":  # the chart view's image grid shows them
                log_image(client, parent.info.run_id, path, 0)
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
    parser.add_argument("--run-figures", action="store_true",
                        help="also draw each run's own figures where a sweep's job left them out, and log them to it")
    args = parser.parse_args(argv)
    try:
        report(args.experiment, args.uri, args.out, args.all, not args.no_mlflow, args.run_figures)
    except ConfigError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")


if __name__ == "__main__":
    main(sys.argv[1:])

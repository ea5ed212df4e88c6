"""Writing a report into a folder, from its runs and their files however read: the summary and pivot tables,
the figures (drawn on every core) and ``report.html``, an earlier report's files replaced."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from PIL import Image

from ..figures.style import layer_columns, previews_kept
from ..processes import heap_frozen, helper_signals, sigterm_held
from .axes import in_sweep_order, swept_columns
from .page import html_page
from .readers import PROFILE_FIGURES
from .sweep_figures import plot_grad_distributions, plot_heatmaps, plot_losses, plot_profiles
from .tables import markdown, pivot_tables, summary_table, verdicts
from .theory_figures import plot_lengths, plot_phase_diagram, plot_slopes, plot_spectra

FIGURE_SECONDS = 120.0  # a figure of a thousand runs takes seconds; none takes minutes
MAX_HEATMAPS = 64  # grad_heatmaps.png has a panel per run: more would be unreadable, and take minutes to draw
log = logging.getLogger(__name__)
OnDrawn = Callable[[Path, Image.Image | None], None]  # called with each figure drawn, and its preview


def write_report(folder: Path, title: str, runs: pd.DataFrame, artifacts: dict[str, dict],
                 on_drawn: OnDrawn | None = None) -> tuple[pd.DataFrame, list[Path]]:
    """The tables, figures and ``report.html`` of ``runs`` into ``folder`` (an earlier report's replaced);
    returns the summary table and the files written."""
    swept = swept_columns(runs)
    runs, in_order = in_sweep_order(runs, swept)  # the tables read as the grid (the figures lay out their own)
    axes = [c.removeprefix("params.") for c in in_order]
    folder.mkdir(parents=True, exist_ok=True)
    _clear(folder)
    table = summary_table(runs, in_order)
    pivots = pivot_tables(table, axes)
    files = _write_tables(folder, table, pivots)
    drawn = draw_figures(_figure_tasks(runs, artifacts, swept, folder), on_drawn=on_drawn)
    files += [path for path in drawn if path is not None]
    figures = sorted((path for path in files if path.suffix == ".png"), key=lambda p: p.name != "grad_profile.png")
    page = folder / "report.html"
    page.write_text(html_page(f"{title}: {len(runs)} runs", f"swept: {', '.join(axes) or 'nothing'}",
                              {"summary": table.set_index("run")} | {f"pivot: {m}": p for m, p in pivots.items()},
                              figures, verdicts(table, axes)))
    return table, files + [page]


REPORT_FIGURES = ("grad_heatmaps.png", "grad_profile.png", "loss_curves.png",
                  *(name for _, name, _ in PROFILE_FIGURES), "grad_distributions.png",
                  "jacobian_spectra.png", "length_map.png", "phase_diagram.png", "grad_slopes.png")
REPORT_TABLES = ("summary.csv", "summary.md", "pivots.md", "report.html")


def _clear(folder: Path) -> None:
    """An earlier report's files in ``folder``, removed (by name only: a folder given with ``--out`` may hold
    others): a figure or pivot this report leaves out would have stayed beside it, telling of other runs."""
    for path in folder.iterdir():
        if path.name in REPORT_FIGURES + REPORT_TABLES or path.name.startswith("pivot_") and path.suffix == ".csv":
            path.unlink()


def _write_tables(folder: Path, table: pd.DataFrame, pivots: dict[str, pd.DataFrame]) -> list[Path]:
    """``summary.csv``/``.md``, and a ``pivot_<metric>.csv`` each with ``pivots.md``; returns the files."""
    table.to_csv(folder / "summary.csv", index=False)
    (folder / "summary.md").write_text(markdown(table))
    files = [folder / "summary.csv", folder / "summary.md"]
    if pivots:
        for metric, pivot in pivots.items():
            name = metric.replace("/", "_")
            pivot.to_csv(folder / f"pivot_{name}.csv")
            files.append(folder / f"pivot_{name}.csv")
        (folder / "pivots.md").write_text("\n".join(f"### {metric}\n\n{markdown(pivot.reset_index())}"
                                                    for metric, pivot in pivots.items()))
        files.append(folder / "pivots.md")
    return files


def _figure_tasks(runs: pd.DataFrame, artifacts: dict[str, dict], swept: list[str], folder: Path) -> list[tuple]:
    """``(function, *args)`` for every figure the runs' files allow, the longest to draw first."""
    histories = artifacts["history.csv"]
    tasks = [(plot_profiles, runs, histories, swept, folder / "grad_profile.png"),
             (plot_losses, runs, histories, swept, folder / "loss_curves.png")]
    if len(histories) <= MAX_HEATMAPS:
        tasks.insert(0, (plot_heatmaps, runs, histories, swept, folder / "grad_heatmaps.png"))
    else:
        log.info("grad_heatmaps.png left out: %d runs, one panel each (at most %d)", len(histories), MAX_HEATMAPS)
    # per layer at full detail; a residual net's stream length and branch ratio per block
    for metric, name, letter in PROFILE_FIGURES:
        if any(layer_columns(h, metric, letter) for h in histories.values()):
            tasks.append((plot_profiles, runs, histories, swept, folder / name, metric, letter))
    if artifacts["distributions.npz"]:
        tasks.append((plot_grad_distributions, runs, artifacts["distributions.npz"], swept,
                      folder / "grad_distributions.png"))
    # the Jacobian spectra (trainer.jacobian_samples), the length map, the phase diagram (a sigma_w2 x depth
    # sweep) and the predicted against measured gradient slopes (one panel each: the quickest, last)
    if artifacts["jacobian.npz"]:
        tasks.append((plot_spectra, runs, artifacts["jacobian.npz"], swept, folder / "jacobian_spectra.png"))
    if artifacts["theory.csv"]:
        tasks.append((plot_lengths, runs, artifacts["theory.csv"], swept, folder / "length_map.png"))
    return tasks + [(plot_phase_diagram, runs, folder / "phase_diagram.png"),
                    (plot_slopes, runs, folder / "grad_slopes.png")]


def draw_figures(tasks: list[tuple], timeout: float = FIGURE_SECONDS,
                 on_drawn: OnDrawn | None = None) -> list[Path | None]:
    """``function(*args)`` for each task, on every core: the figures are independent, and drawing them
    is most of a report's time (matplotlib, one core each).  Children are forked: they start with the
    data and matplotlib already loaded (a fresh interpreter would spend ~1.5 s importing them).
    ``on_drawn(path, preview)`` runs here for each figure as it comes back, while the others are drawn
    (``preview``: a small copy of its pixels from its process, ``style.previews_kept``; None if drawn
    here).  A figure not back within ``timeout`` seconds (a child lost or stuck: a fork can inherit a lock another thread
    held) ends the pool (SIGTERM, which ends the children at once: ``helper_signals``), and the figures not yet drawn are drawn here, one after the other."""
    global _forked_tasks
    workers = min(len(tasks), os.cpu_count() or 1)
    drawn: list[Path | None] = []
    if workers >= 2 and "fork" in multiprocessing.get_all_start_methods():
        _forked_tasks = tasks  # the children have them from the fork: only each task's number is sent
        # the children's collections leave out what they inherit (and so copy none of its pages)
        with heap_frozen(), sigterm_held():  # the children end at SIGTERM, never in our handler (helper_signals)
            pool = multiprocessing.get_context("fork").Pool(workers, initializer=_figure_process)
        with pool:  # one task at a time: they differ in cost
            pending = [pool.apply_async(_draw_forked, (i,)) for i in range(len(tasks))]
            try:
                for result in pending:
                    drawn.append(_handed(*result.get(timeout), on_drawn))
            except multiprocessing.TimeoutError:
                log.warning("a report figure did not come back from its process within %.0f s: the %d left are "
                            "drawn in this process", timeout, len(tasks) - len(drawn))
                pool.terminate()
    _forked_tasks = []
    return drawn + [_handed(_draw_task(task), None, on_drawn) for task in tasks[len(drawn):]]


def _handed(path: Path | None, preview: Image.Image | None,
            on_drawn: OnDrawn | None) -> Path | None:
    if path is not None and on_drawn is not None:
        on_drawn(path, preview)
    return path


def _draw_task(task: tuple) -> Path | None:
    function, *args = task
    return function(*args)


_forked_tasks: list[tuple] = []  # the tasks of the pool being forked (sending each by pipe would pickle
# every run's history once per figure: seconds for a thousand runs)


def _figure_process() -> None:
    """A forked figure process: its signals (``helper_signals``), and the garbage collector's youngest
    generation collected every 50 000 allocations instead of 700.  matplotlib allocates millions of
    short-lived objects; the collections took 8 % of the drawing (measured) and found little: the
    process draws a few figures and exits."""
    helper_signals()
    gc.set_threshold(50_000, *gc.get_threshold()[1:])


def _draw_forked(number: int) -> tuple[Path | None, Image.Image | None]:
    with previews_kept() as previews:
        path = _draw_task(_forked_tasks[number])
    return path, previews.get(path)



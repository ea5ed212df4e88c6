"""The command line of ``python -m runner.figures FOLDER...``: draw the own figures of every run below the
folders that has a ``history.csv`` and no ``plots/`` yet (a sweep's jobs leave them out unless
``tracking.run_figures=always``; with MLflow, ``python -m runner.report --run-figures`` does this)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .run_figures import draw_run_figures


def _job_name(folder: Path) -> str:
    """The job's name from its ``job.json`` (a sweep's job), else the folder's."""
    try:
        return json.loads((folder / "job.json").read_text())["name"]
    except (OSError, ValueError, KeyError):
        return folder.name


def main(argv: list[str] | None = None) -> None:
    """Draw the figures of the runs below the folders given that have none yet."""
    parser = argparse.ArgumentParser(prog="python -m runner.figures",
                                     description="Draw the own figures of the runs below FOLDER that have none yet.")
    parser.add_argument("folders", nargs="+", type=Path, help="run or sweep directories")
    args = parser.parse_args(argv)
    for folder in args.folders:
        if not folder.is_dir():
            parser.exit(2, f"{parser.prog}: error: {folder}: no such directory\n")
    runs = sorted({path.parent for folder in args.folders for path in folder.rglob("history.csv")})
    if not runs:
        tracked = any(next(folder.rglob("job.json"), None) for folder in args.folders)  # a sweep's jobs
        hint = ("its runs' histories are in MLflow: python -m runner.report EXPERIMENT --run-figures draws their "
                "figures" if tracked else "none holds a history.csv")
        parser.exit(2, f"{parser.prog}: error: {' '.join(map(str, args.folders))}: no run directory below ({hint})\n")
    had = {run for run in runs if (run / "plots").exists()}
    drawn = [run for run in runs if run not in had and draw_run_figures(run, _job_name(run))]
    print(f"plots: drew the figures of {len(drawn)} of {len(runs)} runs" + (f" (in {drawn[0]}/plots, ...)" if drawn else "")
          + (f"; {len(had)} had theirs already" if had else ""))

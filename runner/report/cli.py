"""``python -m runner.report``: the command line of the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config.errors import ConfigError
from .make import USAGE


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runner.report", description=USAGE.split("\n\n")[0])
    parser.add_argument("experiment", nargs="?", help="MLflow experiment name (a preset's name, or 'default')")
    parser.add_argument("--folder", type=Path, help="a sweep's folder, for a sweep run with tracking=none "
                                                    "(the report goes into its report/, nothing to MLflow)")
    parser.add_argument("--uri", help="tracking URI (default: $MLFLOW_TRACKING_URI, else ./outputs/mlflow.db)")
    parser.add_argument("--out", type=Path, help="folder (default: outputs/reports/<experiment>)")
    parser.add_argument("--all", action="store_true", help="every run, not only the latest sweep")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log the report to MLflow")
    parser.add_argument("--run-figures", action="store_true",
                        help="also draw each run's own figures where a sweep's job left them out, and log them to it")
    args = parser.parse_args(argv)
    if (args.experiment is None) == (args.folder is None):
        parser.error("give an experiment (its runs in MLflow) or --folder (a sweep run with tracking=none)"
                     + (", not both" if args.folder is not None else ""))
    if args.folder is not None and (args.uri or args.all or args.run_figures):
        parser.error("--folder reads a sweep's folder: --uri, --all and --run-figures are for an experiment in MLflow")
    try:
        if args.folder is not None:
            _folder_exists(args.folder)
            from .folder import report_of_folder  # here: a folder's report imports no MLflow

            report_of_folder(args.folder, args.out)
        else:
            from .make import report

            report(args.experiment, args.uri, args.out, args.all, not args.no_mlflow, args.run_figures)
    except ConfigError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")


def _folder_exists(folder: Path) -> None:
    if not folder.is_dir():
        raise ConfigError(f"--folder={folder}", "no such directory")


if __name__ == "__main__":
    main(sys.argv[1:])

"""``python -m runner.report``: the command line of the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config.errors import ConfigError
from .make import USAGE, report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runner.report", description=USAGE.split("\n\n")[0])
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

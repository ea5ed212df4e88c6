"""``make bench``: the step-cost table, the normalization-cost table, the BLAS-threads table, the
heavy imports with the collector running and paused, the sweep-cost table, the cost per job against a no-op Hydra app, a job's MLflow cost by part, and sweeps
of 36, 360 and 1000 jobs (about 30 minutes), with the machine they ran on: printed as they are
measured, and written to ``docs/benchmarks.md`` once all are.

    python benchmarks/run.py [--repeats N] [--skip-sweeps] [--page PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import blas_threads  # noqa: E402
import import_gc  # noqa: E402
import job_overhead  # noqa: E402
import mlflow_job_cost  # noqa: E402
import norm_cost  # noqa: E402
import step_cost  # noqa: E402
import sweep_cost  # noqa: E402
import thousand_jobs  # noqa: E402


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i['internal_api']} {i.get('version')} ({i['num_threads']} threads, {i.get('architecture')})"
                         for i in threadpool_info() if i["user_api"] == "blas")
    except ImportError:
        blas = "?"
    try:
        import torch

        torch_version = f"torch {torch.__version__}"
    except ImportError:
        torch_version = "torch not installed (pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)"
    import sklearn

    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, NumPy {np.__version__} with {blas}; "
            f"scikit-learn {sklearn.__version__}; {torch_version}")


PAGE = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def sections(repeats: int, sweeps: bool) -> list[tuple[str, Callable[[], list[str]]]]:
    """``(title, table)`` for each benchmark ``make bench`` runs, in order."""
    engine = [("One training step against a minimal NumPy loop, scikit-learn and PyTorch (`step_cost.py`)",
               step_cost.main),
              ("A normalized step against a plain one and PyTorch (`norm_cost.py`)", norm_cost.main),
              ("BLAS threads: one layer's products at one and two threads (`blas_threads.py`)", blas_threads.main),
              ("Heavy imports with the garbage collector running and paused (`import_gc.py`)",
               lambda: import_gc.table(max(5, repeats)))]
    if not sweeps:
        return engine
    return engine + [
        ("The 36-run `vanishing_depth` sweep, tracked and not (`sweep_cost.py`)", lambda: sweep_cost.main(repeats)),
        ("Cost per job against a no-op Hydra app, basic launcher (`job_overhead.py`)",
         lambda: job_overhead.table(repeats=max(2, repeats))),
        ("Cost per job against a no-op Hydra app, 2 joblib workers (`job_overhead.py`)",
         lambda: job_overhead.joblib_table(repeats=max(2, repeats))),
        ("A tracked job's MLflow cost by part (`mlflow_job_cost.py`)", lambda: mlflow_job_cost.measure(40)),
        ("Sweeps of 36, 360 and 1000 jobs end to end (`thousand_jobs.py`)", lambda: thousand_jobs.table([36, 360, 1000])),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="repeats of each sweep configuration")
    parser.add_argument("--skip-sweeps", action="store_true", help="only the engine's tables")
    parser.add_argument("--page", type=Path, default=PAGE, help="where the tables are written (docs/benchmarks.md)")
    args = parser.parse_args()
    command = f"python benchmarks/run.py --repeats {args.repeats}{' --skip-sweeps' * args.skip_sweeps}"
    page = ["# Benchmarks", "",
            f"Written by `make bench` ({command}) on {time.strftime('%Y-%m-%d', time.gmtime())}, on {machine()}.",
            "Every ratio in a table was measured in one run. The machines are shared: read ratios, not times.",
            "What each table measures and what it shows: [scale.md](scale.md#benchmarks-make-bench)."]
    print(page[2], flush=True)
    for title, lines in sections(args.repeats, not args.skip_sweeps):
        print(f"\n{title}", flush=True)
        page += ["", f"## {title}", ""]
        for line in lines():
            print(line, flush=True)
            page.append(line)
    args.page.write_text("\n".join(separated(page)) + "\n")
    print(f"\nwritten to {args.page}")


def separated(lines: list[str]) -> list[str]:
    """``lines`` with a blank line before each table that follows text (Markdown starts no table inside
    a paragraph)."""
    out: list[str] = []
    for line in lines:
        if line.startswith("|") and out and out[-1] and not out[-1].startswith("|"):
            out.append("")
        out.append(line)
    return out


if __name__ == "__main__":
    main()

"""``make bench``: the step-cost table, the normalization-cost table, the BLAS-threads table, the
sweep-cost table, the cost per job against a no-op Hydra app, a job's MLflow cost by part, and sweeps
of 36, 360 and 1000 jobs (about 10 minutes), with the machine they ran on.

    python benchmarks/run.py [--repeats N] [--skip-sweeps]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import blas_threads  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="repeats of each sweep configuration")
    parser.add_argument("--skip-sweeps", action="store_true", help="only the step-cost table")
    args = parser.parse_args()
    print(f"machine: {machine()}\n", flush=True)
    for line in step_cost.main():
        print(line, flush=True)
    print(flush=True)
    for line in norm_cost.main():
        print(line, flush=True)
    print(flush=True)
    for line in blas_threads.main():
        print(line, flush=True)
    if not args.skip_sweeps:
        print(flush=True)
        for line in sweep_cost.main(args.repeats):
            print(line, flush=True)
        print(flush=True)
        for line in job_overhead.table(repeats=max(2, args.repeats)):
            print(line, flush=True)
        print(flush=True)
        for line in job_overhead.joblib_table(repeats=max(2, args.repeats)):
            print(line, flush=True)
        print(flush=True)
        for line in mlflow_job_cost.measure(40):
            print(line, flush=True)
        print(flush=True)
        for line in thousand_jobs.table([36, 360, 1000]):
            print(line, flush=True)


if __name__ == "__main__":
    main()

"""What a sweep's job spends in MLflow, by part, on the embedded sqlite store: a 40-job sweep of the
1000-job grid's nets (``thousand_jobs.py``: tanh, width 8, 100 full-batch epochs, a record every 20
steps, depths 2 to 50) with the basic launcher, in this process, each ``MlflowClient`` call timed.

    python benchmarks/mlflow_job_cost.py [--jobs 40]

Prints a Markdown table: per job, the run's creation, its params, its metric points (and per point),
its artifacts, closing it, the lookups (its experiment, its sweep's parent run), and the rest of the
job (composition, checks, build, training, files) — MLflow's own price beside ours.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import sys
import tempfile
import time
from collections import defaultdict

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
PARTS = {"create_run": "run creation", "log_artifact": "artifacts", "set_terminated": "closing",
         "search_runs": "lookups", "get_experiment_by_name": "lookups", "get_experiment": "lookups",
         "set_tag": "closing"}


def measure(jobs: int) -> list[str]:
    from mlflow.tracking import MlflowClient

    import runner.cli

    spent: dict[str, float] = defaultdict(float)
    points = [0]
    in_job = [False]

    def timed(name, method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                if in_job[0]:
                    if name == "log_batch":
                        metrics = kwargs.get("metrics") or []
                        points[0] += len(metrics)
                        part = "metric points" if metrics else "params" if kwargs.get("params") else "closing"
                    else:
                        part = PARTS[name]
                    spent[part] += time.perf_counter() - started
        return wrapper

    originals = {name: getattr(MlflowClient, name) for name in [*PARTS, "log_batch"]}
    for name, method in originals.items():
        setattr(MlflowClient, name, timed(name, method))
    job_seconds = []
    train = runner.cli.train  # what Hydra's app calls for each job

    def job(cfg):
        in_job[0], started = True, time.perf_counter()
        try:
            return train(cfg)
        finally:
            in_job[0] = False
            job_seconds.append(time.perf_counter() - started)

    runner.cli.train = job
    step = max(1, 50 // jobs)
    here, argv = os.getcwd(), sys.argv
    with tempfile.TemporaryDirectory() as cwd:
        os.chdir(cwd)
        sys.argv = ["backprop-lab", "-m", "init=mean_field", "activation=tanh", "init.sigma_w2=1.5",
                    f"architecture.depth=range(2,{2 + step * jobs},{step})", "architecture.width=8",
                    "init.sigma_b2=0.05", "trainer.epochs=100", "trainer.log_every=20", "dataset.n_samples=200",
                    "tracking.report=never", "hydra.sweep.dir=sweep"]
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the jobs' lines are not the benchmark's
                runner.cli.main()
        except SystemExit as done:
            if done.code:
                raise
        finally:
            os.chdir(here)
            sys.argv, runner.cli.train = argv, train
            for name, method in originals.items():
                setattr(MlflowClient, name, method)
    n = len(job_seconds)
    total = sum(job_seconds) / n
    lines = [f"| per job ({n} jobs, basic launcher, embedded store) | ms | share of the job |", "| --- | --- | --- |"]
    for part in ("run creation", "params", "metric points", "artifacts", "closing", "lookups"):
        lines.append(f"| {part} | {1000 * spent[part] / n:.1f} | {100 * spent[part] / n / total:.0f} % |")
    rest = total - sum(spent.values()) / n
    lines.append(f"| the rest: composition, checks, build, training, files | {1000 * rest:.1f} | "
                 f"{100 * rest / total:.0f} % |")
    lines.append(f"| the whole job | {1000 * total:.1f} | 100 % |")
    lines.append(f"| a metric point ({points[0] / n:.0f} a job) | {1000 * spent['metric points'] / points[0]:.3f} | |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=40)
    print("\n".join(measure(parser.parse_args().jobs)))


if __name__ == "__main__":
    main()

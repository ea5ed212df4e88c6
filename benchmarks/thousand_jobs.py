"""Sweeps of 36, 360 and 1000 jobs end to end, as a user runs them: a σ_w² × depth grid of small tanh nets
(``mean_field`` init, width 8, 200 samples, 100 epochs of full batches, a record every 20 steps) on 2 joblib
workers with the embedded MLflow store, the sweep's report attached automatically.

For each size: the time until the first job starts (Hydra writes its ``.hydra/config.yaml``) and until the checks end,
the wall time, the jobs' own training summed (their ``job.json``) over the workers, the auto-report's time
and share of the wall, the largest resident memory of one process and of the whole process tree (sampled
every 0.2 s), and whether every job is recorded in MLflow as finished.  Prints a Markdown table; ratios,
not absolute times, are what carries to another machine.

    python benchmarks/thousand_jobs.py                  # 36, 360 and 1000 jobs: about 10 minutes here
    python benchmarks/thousand_jobs.py --sizes 36,360
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

WORKERS = 2
SIGMA_W2 = "init.sigma_w2=range(0.5,4.5,0.1)"  # 40 values
DEPTHS = {36: "range(2,20,2)", 360: "range(2,20,2)", 1000: "range(2,52,2)"}  # 9, 9 and 25 depths
SIGMAS = {36: "init.sigma_w2=range(0.5,4.5,1.0)", 360: SIGMA_W2, 1000: SIGMA_W2}  # 4, 40 and 40 values
FIXED = ["init=mean_field", "activation=tanh", "architecture.width=8", "init.sigma_b2=0.05", "trainer.epochs=100",
         "trainer.log_every=20", "dataset.n_samples=200", "hydra/launcher=joblib", f"hydra.launcher.n_jobs={WORKERS}",
         "hydra.sweep.dir=sweep", "tracking.experiment=thousand_jobs"]


def command(size: int) -> list[str]:
    return [sys.executable, "-m", "runner", "-m", SIGMAS[size], f"architecture.depth={DEPTHS[size]}", *FIXED]


class Memory(threading.Thread):
    """The largest RSS of one process and of the tree under ``pid``, sampled until the process ends."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root, self.largest, self.tree = psutil.Process(pid), 0, 0

    def run(self) -> None:
        while self.root.is_running() and self.root.status() != psutil.STATUS_ZOMBIE:
            sizes = []
            for process in [self.root, *self.root.children(recursive=True)]:
                try:
                    sizes.append(process.memory_info().rss)
                except psutil.Error:
                    pass
            self.largest, self.tree = max(self.largest, *sizes, 0), max(self.tree, sum(sizes))
            time.sleep(0.2)


class FirstJob(threading.Thread):
    """When the sweep's first job started: Hydra writes its ``.hydra/config.yaml`` as it starts it (looked
    for every 10 ms, until found or ``ended`` is set)."""

    def __init__(self, folder: Path, started: float) -> None:
        super().__init__(daemon=True)
        self.folder, self.started, self.seconds = folder, started, None
        self.ended = threading.Event()

    def run(self) -> None:
        while self.seconds is None and not self.ended.is_set():
            if next(self.folder.glob("*/.hydra/config.yaml"), None) is not None:
                self.seconds = time.perf_counter() - self.started
            time.sleep(0.01)


def sweep(size: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {"OPENBLAS_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as cwd:
        started = time.perf_counter()
        process = subprocess.Popen(command(size), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        memory = Memory(process.pid)
        memory.start()
        first_job = FirstJob(Path(cwd, "sweep"), started)
        first_job.start()
        checked = report = None
        tail = []
        for line in process.stdout:
            now = time.perf_counter() - started
            tail = (tail + [line])[-40:]
            if checked is None and "job(s) checked" in line:
                checked = now
            if match := re.search(r"report of the sweep \(([\d.]+)s\)", line):
                report = float(match.group(1))
        if process.wait() != 0:
            raise RuntimeError(f"the {size}-job sweep failed:\n{''.join(tail)}")
        wall = time.perf_counter() - started
        memory.join()
        first_job.ended.set()
        first_job.join()
        first = first_job.seconds
        records = [json.loads(p.read_text()) for p in Path(cwd, "sweep").glob("*/job.json")]
        training = sum(r["seconds"] for r in records)
        recorded = finished_runs(Path(cwd, "outputs", "mlflow.db"))
        return {"jobs": size, "checked": checked, "first": first, "wall": wall, "training": training,
                "report": report, "largest": memory.largest, "tree": memory.tree, "recorded": recorded}


def finished_runs(store: Path) -> int:
    """The sweep's job runs that MLflow holds as finished (the parent run left out)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("thousand_jobs")
    runs = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED' and tags.kind = 'job'",
                              max_results=50000)
    return len(runs)


def table(sizes: list[int]) -> list[str]:
    lines = [f"| jobs ({WORKERS} joblib workers, embedded store) | checks end | first job starts | wall | "
             "training / workers | wall / (training / workers) | auto-report | report / wall | largest process | "
             "process tree | finished runs in MLflow |", "| --- " * 11 + "|"]
    for size in sizes:
        r = sweep(size)
        per_worker = r["training"] / WORKERS
        report = f"{r['report']:.1f} s" if r["report"] is not None else "none"
        share = f"{100 * r['report'] / r['wall']:.0f} %" if r["report"] is not None else ""
        lines.append(f"| {size} | {r['checked']:.1f} s | {r['first']:.1f} s | {r['wall']:.0f} s | {per_worker:.0f} s | "
                     f"{r['wall'] / per_worker:.2f} | {report} | {share} | {r['largest'] / 2**20:.0f} MB | "
                     f"{r['tree'] / 2**20:.0f} MB | {r['recorded']} of {size} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="36,360,1000", help="comma-separated numbers of jobs: 36, 360, 1000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if unknown := set(sizes) - set(DEPTHS):
        parser.error(f"--sizes: {sorted(unknown)} not among {sorted(DEPTHS)}")
    print("\n".join(table(sizes)))


if __name__ == "__main__":
    main()

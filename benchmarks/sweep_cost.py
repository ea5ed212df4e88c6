"""The 36-run ``vanishing_depth`` sweep end to end, as a user runs it: with and without MLflow, with
Hydra's basic launcher and with ``hydra/launcher=joblib`` on 2 workers.  Each configuration runs in a
fresh directory, MLflow both on a fresh store (created by the sweep) and on one that exists already,
in interleaved repeats.  Beside the wall times: the jobs' own training time (from their ``job.json``)
summed and divided by the workers, and the fixed start of a sweep (a one-job, one-step sweep)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKERS = 2
LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={WORKERS}"]}
TRACKINGS = ("none", "mlflow (fresh store)", "mlflow (store exists)")


def run(args: list[str], cwd: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return seconds


def sweep(launcher: str, tracking: str) -> tuple[float, float]:
    """(wall seconds, summed training seconds of the jobs)."""
    with tempfile.TemporaryDirectory() as cwd:
        name = tracking.split()[0]
        if tracking == "mlflow (store exists)":  # another experiment made the store: the sweep only adds to it
            run(["trainer.epochs=1", "tracking.experiment=earlier"], cwd)
        seconds = run(["-m", "experiment=vanishing_depth", f"tracking={name}", "hydra.sweep.dir=sweep",
                       *LAUNCHERS[launcher]], cwd)
        records = [json.loads(p.read_text()) for p in Path(cwd, "sweep").glob("*/job.json")]
        return seconds, sum(r["seconds"] for r in records)


def fixed_start() -> float:
    """A sweep of one job of one step on 2 joblib workers, tracking=none: what any sweep pays to start."""
    with tempfile.TemporaryDirectory() as cwd:
        return run(["-m", "trainer.epochs=1", "architecture.depth=1", "tracking=none", *LAUNCHERS["joblib"]], cwd)


def main(repeats: int = 1) -> list[str]:
    configs = [(launcher, tracking) for launcher in LAUNCHERS for tracking in TRACKINGS]
    walls: dict[tuple[str, str], list[float]] = {c: [] for c in configs}
    trained: dict[tuple[str, str], list[float]] = {c: [] for c in configs}
    starts = []
    for _ in range(repeats):
        starts.append(fixed_start())
        for config in configs:
            wall, training = sweep(*config)
            walls[config].append(wall)
            trained[config].append(training)
    wall = {c: statistics.median(v) for c, v in walls.items()}
    training = {c: statistics.median(v) for c, v in trained.items()}
    start = statistics.median(starts)
    lines = [
        f"36-run vanishing_depth sweep, wall time (median of {repeats}); a sweep's fixed start "
        f"(one job of one step, joblib): {start:.1f} s",
        "| launcher | tracking=none | MLflow, fresh store | MLflow, store exists | fresh / none | exists / none "
        "| training summed / workers | none / (that + fixed start) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for launcher in LAUNCHERS:
        none, fresh, exists = (wall[(launcher, t)] for t in TRACKINGS)
        workers = WORKERS if launcher == "joblib" else 1
        arithmetic = training[(launcher, "none")] / workers
        lines.append(f"| {launcher} | {none:.1f} s | {fresh:.1f} s | {exists:.1f} s | {fresh / none:.2f} | {exists / none:.2f} "
                     f"| {arithmetic:.1f} s | {none / (arithmetic + start):.2f} |")
    return lines


if __name__ == "__main__":
    for line in main(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
        print(line, flush=True)

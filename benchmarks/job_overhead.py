"""A sweep's cost per job against Hydra's own floor, measured side by side in one run: the no-op Hydra
app (``noop_app.py``) and backprop-lab with ``tracking=none`` and one update per job, both swept over
N jobs with the basic launcher, in fresh directories, alternating.  Also each command's time to its
first job (backprop-lab: until its "job(s) checked" line).  Then the 36-job ``vanishing_depth`` sweep on
2 joblib workers: its wall beyond its training (the sum of its jobs' training over the two workers)
against the no-op app's whole wall on the same launcher.  Prints Markdown tables; ratios, not absolute
times, are what carries to another machine."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(command: list[str], marker: str | None, training: list[float] | None = None) -> tuple[float, float | None]:
    """(wall seconds, seconds until a line containing ``marker`` was printed); the jobs' training seconds
    (from their ``job.json``) appended to ``training`` when given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {"OPENBLAS_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as cwd:
        started, first = time.perf_counter(), None
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        for line in process.stdout:
            if marker and first is None and marker in line:
                first = time.perf_counter() - started
        if process.wait() != 0:
            raise RuntimeError(f"{' '.join(command)} failed")
        wall = time.perf_counter() - started
        if training is not None:
            training.append(sum(json.loads(path.read_text())["seconds"] for path in Path(cwd).rglob("job.json")))
        return wall, first


def table(jobs: int = 360, repeats: int = 2) -> list[str]:
    """The Markdown table: each command's wall, per job, against the no-op app, and to its first job."""
    sweep = f"range(0,{jobs})"
    commands = {
        "no-op Hydra app": ([sys.executable, str(HERE / "noop_app.py"), "-m", f"+x={sweep}"], None),
        "no-op, no output files": ([sys.executable, str(HERE / "noop_app.py"), "-m", f"+x={sweep}",
                                    "hydra.output_subdir=null", "hydra/job_logging=none"], None),
        "backprop-lab, tracking=none": ([sys.executable, "-m", "runner", "-m", f"seed={sweep}", "tracking=none",
                                         "trainer.epochs=1", "tracking.report=never"], "job(s) checked"),
    }
    walls = {name: [] for name in commands}
    firsts = {name: [] for name in commands}
    for _ in range(repeats):
        for name, (command, marker) in commands.items():
            wall, first = timed(command, marker)
            walls[name].append(wall)
            if first is not None:
                firsts[name].append(first)
    floor = statistics.median(walls["no-op Hydra app"])
    lines = [f"| {jobs} jobs, basic launcher | wall (median of {repeats}) | per job | vs no-op app | to first job |",
             "| --- | --- | --- | --- | --- |"]
    for name in commands:
        wall = statistics.median(walls[name])
        first = f"{statistics.median(firsts[name]):.1f} s" if firsts[name] else ""
        lines.append(f"| {name} | {wall:.1f} s | {1000 * wall / jobs:.0f} ms | {wall / floor:.2f}x | {first} |")
    return lines


JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


def joblib_table(repeats: int = 2) -> list[str]:
    """The 36-job ``vanishing_depth`` sweep on 2 joblib workers, ``tracking=none``: what it spends beyond
    its training, against the whole wall of the no-op app's 36 jobs on the same launcher (alternating)."""
    commands = {
        "no-op Hydra app, `+x=range(0,36)`": [sys.executable, str(HERE / "noop_app.py"), "-m", "+x=range(0,36)", *JOBLIB],
        "backprop-lab, `experiment=vanishing_depth tracking=none`": [
            sys.executable, "-m", "runner", "-m", "experiment=vanishing_depth", "tracking=none", *JOBLIB],
    }
    around = {name: [] for name in commands}
    walls = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            training: list[float] = []
            wall, _ = timed(command, None, training)
            walls[name].append(wall)
            around[name].append(wall - training[0] / 2)
    floor = statistics.median(around[next(iter(commands))])
    lines = [f"| 36 jobs, 2 joblib workers (median of {repeats}) | wall | training / workers | wall beyond it "
             "| vs the no-op app |", "| --- | --- | --- | --- | --- |"]
    for name in commands:
        wall, beyond = statistics.median(walls[name]), statistics.median(around[name])
        lines.append(f"| {name} | {wall:.1f} s | {wall - beyond:.1f} s | {beyond:.1f} s | {beyond / floor:.2f}x |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=360)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print("\n".join(table(args.jobs, args.repeats)))
    print()
    print("\n".join(joblib_table(args.repeats)))


if __name__ == "__main__":
    main()

"""The 36-run ``vanishing_depth`` sweep end to end, as a user runs it: with and without MLflow,
with Hydra's basic launcher and with ``hydra/launcher=joblib`` on 2 workers. Each configuration
runs in a fresh directory (so MLflow creates a fresh sqlite store), in interleaved repeats."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

CONFIGS = {
    ("basic", "none"): [],
    ("basic", "mlflow"): [],
    ("joblib", "none"): ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    ("joblib", "mlflow"): ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
}


def sweep_seconds(launcher_args: list[str], tracking: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with tempfile.TemporaryDirectory() as cwd:
        t = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "runner", "-m", "experiment=vanishing_depth", f"tracking={tracking}", *launcher_args],
            cwd=cwd, env=env, capture_output=True, text=True,
        )
        seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"sweep failed:\n{done.stderr[-2000:]}")
    return seconds


def main(repeats: int = 1) -> list[str]:
    times: dict[tuple[str, str], list[float]] = {key: [] for key in CONFIGS}
    for _ in range(repeats):
        for (launcher, tracking), args in CONFIGS.items():
            times[(launcher, tracking)].append(sweep_seconds(args, tracking))
    median = {key: statistics.median(v) for key, v in times.items()}
    lines = [
        f"36-run vanishing_depth sweep, wall time (median of {repeats}), fresh store each time:",
        "| launcher | tracking=none | tracking=mlflow | mlflow/none |",
        "|---|---|---|---|",
    ]
    for launcher in ("basic", "joblib"):
        none, mlflow = median[(launcher, "none")], median[(launcher, "mlflow")]
        lines.append(f"| {launcher} | {none:.1f} s | {mlflow:.1f} s | {mlflow / none:.2f} |")
    lines.append(f"joblib (2 workers) vs basic, with MLflow: {median[('basic', 'mlflow')] / median[('joblib', 'mlflow')]:.2f}x faster")
    return lines


if __name__ == "__main__":
    for line in main(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
        print(line, flush=True)

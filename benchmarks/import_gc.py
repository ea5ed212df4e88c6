"""The heavy imports of a command, with Python's garbage collector running (as Python starts) and paused
(``runner.processes.imports_unscanned``, as the commands import them): each measured in a fresh
interpreter that has already imported what comes before it (as a sweep's launching process has, when
it imports MLflow), the two ways alternated, the median of each.  Prints a Markdown table.

    python benchmarks/import_gc.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

# (what is imported, what the process has imported before it), in the order a tracked sweep imports them
IMPORTS = [("runner.cli", ""), ("runner.sweep.parent_run", "runner.cli"),
           ("runner.report.make", "runner.sweep.parent_run"), ("sklearn.datasets", "runner.cli")]
SHOWN = {"runner.cli": "the command (Hydra, OmegaConf, NumPy, the engine)",
         "runner.sweep.parent_run": "MLflow (a sweep's parent run)",
         "runner.report.make": "the report (pandas, matplotlib)",
         "sklearn.datasets": "scikit-learn (`dataset=digits`)"}
PROBE = """
import sys, time
{before}
from runner.processes import imports_unscanned
import contextlib
started = time.perf_counter()
with (imports_unscanned() if {paused} else contextlib.nullcontext()):
    import {module}
print(time.perf_counter() - started)
"""


def seconds(module: str, before: str, paused: bool) -> float:
    code = PROBE.format(before=f"import {before}" if before else "", paused=paused, module=module)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={"OPENBLAS_NUM_THREADS": "1", "PATH": ""})
    return float(done.stdout)


def table(repeats: int = 5) -> list[str]:
    lines = [f"| import (median of {repeats}) | collector running | collector paused | paused / running |",
             "| --- | --- | --- | --- |"]
    for module, before in IMPORTS:
        running, paused = [], []
        for _ in range(repeats):  # alternated: the machine's speed moves within a minute
            running.append(seconds(module, before, paused=False))
            paused.append(seconds(module, before, paused=True))
        a, b = statistics.median(running), statistics.median(paused)
        lines.append(f"| {SHOWN[module]} | {a:.2f} s | {b:.2f} s | {b / a:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    print("\n".join(table(parser.parse_args().repeats)))


if __name__ == "__main__":
    main()

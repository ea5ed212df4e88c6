"""How many BLAS threads a job uses: chosen, never inherited.

OpenBLAS starts one thread per core by default; on a shared 2-core machine, or with two jobs of a
sweep side by side, those threads fight over the cores (the same small run took 5 s with one thread
and up to 59 s with the default).  So a job uses one thread, unless it runs alone and its net is
large enough for a second core to pay: the largest matrix product of a step reaches
``CROSSOVER_FLOPS``.  ``trainer.threads=N`` overrides the choice.
"""

from __future__ import annotations

import os

CROSSOVER_FLOPS = 6e7  # 2 x batch x fan_in x fan_out of the largest layer (benchmarks/blas_threads.py, README)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def blas_threads(requested: int | None, sizes, batch: int, alone: bool) -> int:
    """``requested`` if given; else all available cores for a job running alone whose largest layer's
    product (``batch`` rows) reaches ``CROSSOVER_FLOPS``, and 1 otherwise."""
    if requested is not None:
        return requested
    largest = 2 * batch * max(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    return available_cores() if alone and largest >= CROSSOVER_FLOPS else 1

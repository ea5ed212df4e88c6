"""The memory a run would need, against what this machine has available now (psutil: portable)."""

from __future__ import annotations

import math
import time

import psutil

from ..config.errors import ConfigError


def available_memory() -> int:
    """Bytes this machine can give a new allocation now: a reading at most ``READING_SECONDS`` old (a
    sweep's checks ask for every job; psutil reads ``/proc/meminfo`` each time, 0.1 ms: a tenth of a second
    of a thousand jobs' checks, measured)."""
    global _reading
    if time.monotonic() - _reading[0] > READING_SECONDS:
        _reading = time.monotonic(), psutil.virtual_memory().available
    return _reading[1]


READING_SECONDS = 1.0
_reading: tuple[float, int] = (-math.inf, 0)  # (when, bytes available)


def check_memory(subject: str, needed: float, budget: float, what: str) -> None:
    if needed > budget:
        raise ConfigError(subject, f"{what} would need about {_bytes(needed)}, more than the {_bytes(budget)} that "
                                   f"trainer.max_memory_fraction allows of the {_bytes(available_memory())} available now")


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1024


def network_bytes(sizes: list[int], rows: int, itemsize: int, state_arrays: int) -> int:
    """What a run keeps in memory at most: parameters, gradients, the update and the optimizer's
    state (``state_arrays`` arrays the size of the parameters), and every layer's input, Z and A
    for ``rows`` samples (the largest pass: a batch, the validation set or the closing record's)."""
    n_params = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
    return itemsize * ((3 + state_arrays) * n_params + 3 * rows * sum(sizes))

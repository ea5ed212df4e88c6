"""``hydra/sweeper=grid``, the default: Hydra's basic sweeper (the same ``params``, ``max_batch_size``
and grid), without the pass in which it composes every job of a batch again before launching it, and
handing a parallel launcher the jobs expected to take longest first (``longest_first``).

backprop-lab's callback has composed and checked every job of the sweep before Hydra instantiates its
sweeper (``runner.sweep.jobs.check_sweep``), so that pass would only repeat it: ~2 ms a job, 2 s before
the first of 1000 jobs.  ``hydra/sweeper=basic`` still makes it.  The checks built every job, which tells
how long each is expected to take (``runner.sweep.launch_order``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

from runner.sweep.launch_order import longest_first  # (light: Hydra imports this module in every process)


class GridSweeper(BasicSweeper):
    """Hydra's basic sweeper, whose batches were checked before it started; a launcher that runs jobs at
    once gets each batch longest first (unless ``longest_first=false``), numbering them in that order."""

    def __init__(self, max_batch_size: Optional[int], params: Optional[dict[str, str]] = None,
                 longest_first: bool = True) -> None:
        super().__init__(max_batch_size, params)
        self.longest_first = longest_first

    def get_job_batch(self) -> Sequence[Sequence[str]]:
        batch = super().get_job_batch()
        at_once = not isinstance(self.launcher, BasicLauncher)  # the basic launcher runs one job at a time
        return longest_first(batch) if self.longest_first and at_once else batch

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Nothing to do: every job was composed and checked by the callback's ``on_multirun_start``."""

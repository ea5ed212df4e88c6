"""``hydra/sweeper=grid``, the default: Hydra's basic sweeper (the same ``params``, ``max_batch_size``
and grid), without the pass in which it composes every job of a batch again before launching it.

backprop-lab's callback has composed and checked every job of the sweep before Hydra instantiates its
sweeper (``runner.sweep.jobs.check_sweep``), so that pass would only repeat it: ~2 ms a job, 2 s before
the first of 1000 jobs.  ``hydra/sweeper=basic`` still makes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper


class GridSweeper(BasicSweeper):
    """Hydra's basic sweeper, whose batches were checked before it started."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Nothing to do: every job was composed and checked by the callback's ``on_multirun_start``."""

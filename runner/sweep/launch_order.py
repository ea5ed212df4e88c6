"""The order in which a parallel launcher is handed a grid's jobs: those expected to take longest first.

Workers take the next job as they free up, so a grid launched in its own order ends on its last jobs,
often its largest (``vanishing_depth`` ends on its depth-16 nets): one worker trains the last of them
alone while the others idle, ~0.7 s of a 10 s sweep on two workers here (measured).  Launched longest
first (Graham's LPT rule), the sweep ends on its smallest jobs instead.  The expected work of a job is
read from its build, which the checks make anyway (``jobs.JobChecker``): only the order of the jobs
matters, not its size.

The launcher numbers the jobs as it is handed them (``hydra.job.num``, the sweep's folders): job 0 is
then the longest.  ``hydra.sweeper.longest_first=false`` launches a grid in its own order; the basic
launcher, which runs one job at a time, always does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (Hydra imports the grid sweeper, and so this module, in every process it starts)
    from ..run.build import BuiltRun

_expected: dict[tuple[str, ...], int] = {}  # the checked sweep's jobs (their overrides) -> their expected work


def expected_work(built: BuiltRun) -> int:
    """The multiply-adds of a job's updates, up to a factor: updates x examples an update x parameters."""
    n_train = len(built.data.X_train)
    per_update = min(built.trainer.batch_size or n_train, n_train)
    return built.trainer.total_steps(n_train) * per_update * built.net.trainable.size


def checked(work: dict[tuple[str, ...], int]) -> None:
    """The expected work of each job of the sweep just checked (``jobs.check_sweep``)."""
    _expected.clear()
    _expected.update(work)


def longest_first(batch: Sequence[Sequence[str]]) -> list[Sequence[str]]:
    """``batch``'s jobs, the longest expected first; jobs expected to take as long in the grid's order.  A
    batch with a job the checks did not see (a sweep checked another way) is left in its order."""
    if not all(tuple(job) in _expected for job in batch):
        return list(batch)
    return sorted(batch, key=lambda job: -_expected[tuple(job)])

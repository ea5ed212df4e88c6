"""``hydra/sweeper=optuna``: the Hydra face of backprop-lab's Bayesian search (``runner.sweep.search``).

Hydra imports every module of ``hydra_plugins`` at start-up, so this one imports nothing heavy: Optuna
and the search are imported when a search is set up.
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper


class OptunaSweeper(Sweeper):
    """Asks Optuna for trials, runs them as jobs through Hydra's launcher, tells Optuna their results."""

    def __init__(self, **settings: Any) -> None:  # Hydra passes the sweeper's config; the search reads it there
        self.search = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        from runner.sweep.search import Search  # here: it imports Optuna (~0.3 s), which only a search pays

        self.search = Search(hydra_context, task_function, config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.search.run(arguments)

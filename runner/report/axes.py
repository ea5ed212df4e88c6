"""The params a report's runs vary: its axes (whatever holds the runs, a store or a sweep's folder)."""

from __future__ import annotations

import pandas as pd

from ..config.deciding import decides_the_result
from .tables import a_sample_each, as_text, value_ranks


def swept_columns(runs: pd.DataFrame) -> list[str]:
    """The params that differ between the runs: what the sweep varied.  A parameter of one option
    (``init.std`` when the sweep also varies ``init``) is left out: its "null" in the other options'
    runs would split them into a meaningless panel; so is one that does not change what a run computes
    (``resume``: a resumed sweep's reused runs have it false, its new ones true)."""
    params = [c for c in runs.columns if c.startswith("params.") and decides_the_result(c.removeprefix("params."))]
    swept = []
    for column in params:
        if runs[column].nunique(dropna=False) < 2:  # one value in every run (most params): no text to compare
            continue
        values = as_text(runs[column])
        group = column.removeprefix("params.").split(".")[0]
        # a parameter of the chosen option (init.std, optimizer.lr at each optimizer's default) follows
        # the group's choice when the sweep varies it: not an axis of its own
        an_options_own = "." in column.removeprefix("params.") and f"params.{group}" in params and \
            as_text(runs[f"params.{group}"]).nunique() > 1 and _determined_by(values, as_text(runs[f"params.{group}"]))
        # a group choice and its option's name (init / init.name), or a value derived from a swept one
        # (init.sigma_w2 = ${critical_sigma_w2:${activation.name},...}), say the same: keep one
        if values.nunique() > 1 and not an_options_own and not any(_same_split(values, as_text(runs[kept]))
                                                                    for kept in swept):
            swept.append(column)
    return swept


def _determined_by(values: pd.Series, choice: pd.Series) -> bool:
    """Whether each choice comes with one value."""
    return pd.DataFrame({"v": values, "c": choice}).drop_duplicates()["c"].is_unique


def _same_split(a: pd.Series, b: pd.Series) -> bool:
    """Whether two columns split the runs into the same groups (one value of ``a`` to one of ``b``), as
    one that follows from the other does; not two numbers that merely differ in every run (a search's
    samples: the learning rate and the init's scale each a value per trial)."""
    if a_sample_each(a) and a_sample_each(b):
        return False
    pairs = pd.DataFrame({"a": a, "b": b}).drop_duplicates()
    return pairs["a"].is_unique and pairs["b"].is_unique


def in_sweep_order(runs: pd.DataFrame, swept: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """``(runs, swept)`` in a grid's order: the swept params in the order the jobs' overrides name them
    (the first, outermost, slowest to change), and the runs sorted by them, numbers ascending, names in the
    order the runs give them, runs of one combination (a report of several sweeps) as they come.  A grid
    launched longest first (``launch_order``) ran its deepest nets first, and its jobs are numbered so: its
    summary read depth 16 before depth 2.  A search's trials keep their order (``searched``), as do runs
    without overrides."""
    if len(runs) < 2 or not swept or "overrides" not in runs or runs["overrides"].isna().any() \
            or runs.get("searched", pd.Series(False, index=runs.index)).any():
        return runs, swept
    named = [token.lstrip("+").split("=", 1)[0] for token in str(runs["overrides"].iloc[0]).split()]
    axes = sorted(swept, key=lambda c: named.index(c.removeprefix("params."))
                  if c.removeprefix("params.") in named else len(named))  # stable: the others as they come
    ranks = pd.DataFrame({column: value_ranks(runs[column]) for column in axes})
    order = ranks.sort_values(axes, kind="stable").index  # lexsort: stable on the runs of one combination
    return runs.loc[order].reset_index(drop=True), axes

"""The report's tables: one row per run, and pivots of the swept axes with seeds aggregated."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..tracking.schema import JobStatus

SUMMARY_METRICS = ("final/train_loss", "final/val_loss", "final/val_accuracy", "grad_ratio_first_last",
                   "log10_grad_ratio_first_last", "diverged_at_step")
PIVOTED = ("log10_grad_ratio_first_last", "final/val_loss")  # what a sweep on vanishing gradients asks


def as_text(column: pd.Series) -> pd.Series:
    """Param values as text; a run that did not log the param (its value was null) reads "null"."""
    return column.astype(object).where(column.notna(), "null").astype(str)


def summary_table(runs: pd.DataFrame, swept: list[str]) -> pd.DataFrame:
    """One row per run: its name, the swept params, its status and summary metrics."""
    table = pd.concat([runs[["run_name"]], *(as_text(runs[c]) for c in swept), runs[["status"]]], axis=1)
    table.columns = ["run", *(c.removeprefix("params.") for c in swept), "status"]
    for metric in SUMMARY_METRICS:
        column = f"metrics.{metric}"
        table[metric] = runs[column] if column in runs else math.nan
    if table["log10_grad_ratio_first_last"].isna().all():  # runs logged before the log10 summary existed
        ratio = table["grad_ratio_first_last"].astype(float)  # as a run logs it: no log10 of 0 (no gradient)
        table["log10_grad_ratio_first_last"] = np.log10(ratio.where(ratio > 0))
    table["diverged"] = runs["status"].eq(JobStatus.diverged)
    return table


def pivot_tables(table: pd.DataFrame, axes: list[str]) -> dict[str, pd.DataFrame]:
    """For each metric in ``PIVOTED``: rows = the swept axis with the most (numeric-first) values, columns
    = the other swept axes; a swept ``seed`` is aggregated, each cell ``mean ± std`` (sample std) over
    the seeds.  Empty without an axis, and where most cells would be empty (a search's samples: a row
    and a column each, the summary has them all)."""
    seeded = "seed" in axes
    axes = [a for a in axes if a != "seed"]
    if not axes or math.prod(table[a].nunique() for a in axes) > 2 * len(table):
        return {}
    rows = max(axes, key=lambda a: (as_numbers(table[a]) is not None, table[a].nunique()))
    columns = [a for a in axes if a != rows]
    pivots = {}
    for metric in PIVOTED:
        groups = table.groupby([rows, *columns], sort=False)[metric]
        cells = groups.agg(lambda v: _cell(v.astype(float), seeded)).reset_index()
        pivot = cells.pivot_table(index=rows, columns=columns or None, values=metric, aggfunc="first") \
            if columns else cells.set_index(rows)[[metric]]
        order = as_numbers(pd.Series(pivot.index))
        if order is not None:
            pivot = pivot.iloc[np.argsort(order.to_numpy(), kind="stable")]
        if columns:
            keys = [key if isinstance(key, tuple) else (key,) for key in pivot.columns]
            # in the summary's order: numbers in numeric order, names as the rows first give them
            ranks = [dict(zip(as_text(table[c]), value_ranks(table[c]))) for c in columns]
            ordered = sorted(range(len(keys)), key=lambda i: [rank[v] for rank, v in zip(ranks, keys[i])])
            pivot = pivot.iloc[:, ordered]
            pivot.columns = [", ".join(f"{c}={v}" for c, v in zip(columns, keys[i])) for i in ordered]
        pivots[metric] = pivot
    return pivots


def _cell(values: pd.Series, seeded: bool) -> str:
    finite = values[np.isfinite(values)]
    if finite.empty:
        return "diverged" if len(values) else ""
    if not seeded or len(values) == 1:
        return f"{finite.iloc[0]:.4g}"
    spread = finite.std(ddof=1) if len(finite) > 1 else math.nan
    missing = f" ({len(values) - len(finite)} of {len(values)} not finite)" if len(finite) < len(values) else ""
    return f"{finite.mean():.4g} ± {spread:.2g}{missing}"


def a_sample_each(column: pd.Series) -> bool:
    """Whether ``column`` is a number that differs in every run (of more than two): a search's samples,
    which no grid has beside another axis."""
    return len(column) > 2 and as_text(column).nunique() == len(column) and as_numbers(column) is not None


def panel_axes(table: pd.DataFrame, axes: list[str]) -> list[str]:
    """The ``axes`` a figure may give panels (rows, columns) and a verdict each: not ``a_sample_each``
    (panels of one run each); that one is named in the lines' labels."""
    return [a for a in axes if not a_sample_each(table[a])]


def ordered_axis(table: pd.DataFrame, axes: list[str]) -> str | None:
    """The numeric axis with the most values (depth in a depth sweep): what lines are coloured along,
    heatmaps laid out across and verdicts read along; None when no axis is numeric."""
    numeric = [a for a in axes if as_numbers(table[a]) is not None]
    return max(numeric, key=lambda a: table[a].nunique()) if numeric else None


def value_ranks(column: pd.Series) -> pd.Series:
    """Each run's place along a swept param: its number where every value is one, else the rank of its
    value's first appearance (the sweep's order of names).  Sorted by it, the report's panels, heatmap
    grid and tables read numbers in numeric order (a grid launched longest first gives them in another)."""
    values = as_text(column)
    numbers = as_numbers(values)
    return numbers if numbers is not None else pd.Series(pd.factorize(values)[0], index=values.index)


def as_numbers(column: pd.Series) -> pd.Series | None:
    """``column`` as numbers if every value is one (depth "16" -> 16), else None."""
    converted = pd.to_numeric(column, errors="coerce")
    return None if converted.isna().any() else converted


def markdown(table: pd.DataFrame) -> str:
    def cell(value) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def verdicts(table: pd.DataFrame, axes: list[str]) -> list[str]:
    """One sentence per panel of the profile figure (a combination of the swept choices), from the data:
    the first layer's gradient against the last's at step 0 (``log10_grad_ratio_first_last``) along the
    numeric axis (depth), and whether it vanishes, holds or explodes there (beyond one decade); then what
    the runs reached at the end, and which of them diverged, at which step."""
    axes = [a for a in axes if a != "seed"]
    along = ordered_axis(table, axes)
    panels = [a for a in panel_axes(table, axes) if a != along]
    name = along.rsplit(".", 1)[-1] if along else ""
    sentences = []
    for key, group in (table.groupby(panels, sort=False) if panels else [((), table)]):
        key = key if isinstance(key, tuple) else (key,)
        points = group.groupby(as_numbers(group[along]) if along else group["run"])  # along depth, else per run
        ratio = points["log10_grad_ratio_first_last"].mean().dropna().sort_index()
        if ratio.empty:
            continue
        where = ", ".join(f"{a}={v}" for a, v in zip(panels, key)) or "every run"
        worst = ratio.abs().idxmax()
        trend = ("vanishes" if ratio[worst] < -1 else "explodes" if ratio[worst] > 1 else "holds within a decade")
        at = f" at {name}={worst:g}" if along else f" in {worst}" if len(ratio) > 1 else ""  # not the panel's one run again
        steps = "; ".join(f"{name}={k:g}: 10^{v:.1f}" for k, v in ratio.items()) if along else ""
        sentences.append(f"{where}: the first layer's gradient is 10^{ratio[worst]:.1f} of the last layer's at "
                         f"step 0{at}: it {trend}" + (f" ({steps})." if steps else ".") + _outcome(group, points, name)
                         + _divergences(group, along, name))
    return sentences


def _outcome(group: pd.DataFrame, points, name: str) -> str:
    """`` At the end, val accuracy 0.46.`` (a panel's one run), or along the numeric axis ``name`` ``… depth=2: 1;
    depth=16: 0.46.``: what training made of the gradients (Adam trains a net whose gradient vanished; sgd
    does not), the validation accuracy where runs have one, else the validation loss; nothing for runs that
    have neither, that diverged, or several runs without an axis to read them along (the table has them)."""
    metric = next((m for m in ("final/val_accuracy", "final/val_loss") if m in group and group[m].notna().any()), None)
    if metric is None or not name and len(group) > 1:
        return ""
    label = metric.removeprefix("final/").replace("_", " ")
    values = points[metric].mean().dropna().sort_index()
    if not name:
        return f" At the end, {label} {values.iloc[0]:.3g}."
    return f" At the end, {label}: " + "; ".join(f"{name}={k:g}: {v:.3g}" for k, v in values.items()) + "."


def _divergences(group: pd.DataFrame, along: str | None, name: str) -> str:
    """`` 2 of 3 runs diverged (std=0.5 at step 1, std=1 at step 3).`` (`` It diverged at step 1.`` of a panel's
    one run), or nothing when none did."""
    diverged = group[group["diverged"]] if "diverged" in group else group.iloc[:0]
    if diverged.empty:
        return ""
    if len(group) == 1:
        step = float(diverged["diverged_at_step"].iloc[0])
        return " It diverged" + (f" at step {step:g}." if step == step else ".")
    which = ", ".join((f"{name}={float(value):g}" if name else str(run)) + (f" at step {step:g}" if step == step else "")
                      for value, run, step in zip(diverged[along] if along else diverged["run"], diverged["run"],
                                                  diverged["diverged_at_step"].astype(float)))
    return f" {len(diverged)} of {len(group)} runs diverged ({which})."

"""Which config keys decide what a run computes.  The others (where it is tracked, ``resume``, its
description, a sweep's size limit, the memory guard) enter neither the hash that identifies a run
(``runner.config.recorded``) nor what tells runs apart: their names, their notes' lists of changes, the
report's swept axes; and how a value reads in a run's name or a figure's label.  No Hydra import: the
report reads it."""

from __future__ import annotations

NOT_DECIDING = ("tracking", "resume", "description", "max_jobs")  # top-level keys
NOT_DECIDING_TRAINER = ("max_memory_fraction",)  # a guard, not a setting of the computation


def decides_the_result(key: str) -> bool:
    """Whether ``key`` (dotted: ``trainer.epochs``) changes what a run computes."""
    top, _, rest = key.partition(".")
    return top not in NOT_DECIDING and not (top == "trainer" and rest in NOT_DECIDING_TRAINER)


def tells_the_run_apart(key: str) -> bool:
    """Whether an override of ``key`` says how a run differs from its preset (its name and the changes its
    note lists): not the preset's choice itself, nor what does not change what a run computes."""
    return decides_the_result(key) and key.split(".")[0] != "experiment"


def shortest(value: str, digits: int = 6) -> str:
    """A number written with more significant digits than a hand types (more than 12), short: ``range()``
    sums its steps (``0.15000000000000002``, named ``0.15``), and a sampler's draw (Optuna's
    ``0.591031707742531``) is cut to ``digits`` (``0.591032``: an MLflow table's column holds it; the params
    and the overrides tag keep every digit).  Anything else as typed (``1.0`` stays ``1.0``)."""
    try:
        number = float(value)
    except ValueError:
        return value
    twelve = format(number, ".12g")
    if float(twelve) == number or len(twelve) >= len(value):
        return value
    # range()'s noise ends in zeros (0.150000000000): 9 digits or fewer; a draw has 12 (all but 1 in 1000)
    return twelve if float(format(number, ".9g")) == float(twelve) else format(number, f".{digits}g")

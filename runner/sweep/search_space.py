"""The search space of a sampling sweeper (Optuna), checked whole before its first trial.

A grid is checked job by job (``runner.sweep.jobs.check_sweep``); a sampler draws its trials as it goes,
so what can be checked is every point it could start from: each ``choice()`` value, both bounds of
each ``interval()`` and ``range()`` (Optuna's ``range`` includes its stop), the others held at their
first value; the bounds are ordered, a ``log`` interval is positive (the direction and the sampler are
closed choices of the sweeper's schema, refused by Hydra when it composes).
"""

from __future__ import annotations

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from omegaconf import DictConfig, OmegaConf

from ..config.errors import ConfigError
from ..config.overrides import typed_overrides
from ..config.schema import GRID_SWEEPERS
from .jobs import check_job


def is_sampling(config: DictConfig) -> bool:
    return config.hydra.sweeper.get("_target_") not in GRID_SWEEPERS


def check_search_space(config: DictConfig, loader) -> list[str]:
    """Check every point of the sampler's space; returns the keys it samples."""
    sweeper = config.hydra.sweeper
    params = [f"{k}={v}" for k, v in (OmegaConf.to_container(sweeper, resolve=False).get("params") or {}).items()]
    overrides = OverridesParser.create(config_loader=loader).parse_overrides(params + typed_overrides(config.hydra))
    fixed = [o.input_line for o in overrides if not o.is_sweep_override()]
    swept = {o.key_or_group: (o, points(o)) for o in overrides if o.is_sweep_override()}
    first = {key: values[0] for key, (_, values) in swept.items()}
    for key, (override, values) in swept.items():
        for value in values:
            others = [f"{k}={v}" for k, v in first.items() if k != key]
            try:
                check_job(config, loader, fixed + others + [f"{key}={value}"], f"a point of {override.input_line}")
            except ConfigError as err:
                raise ConfigError(f"{err}{_interval_hint(override, err)}") from None
    return list(swept)


def points(override) -> list[str]:
    """The values of ``override`` a sampler may start from, as override text; ConfigError for a space
    it cannot sample (bounds out of order, a log interval through 0, a range of step 0, no choice)."""
    value, line = override.value(), override.input_line
    if isinstance(value, IntervalSweep):
        if not value.start < value.end:
            raise ConfigError(line, f"an interval needs low < high, got {value.start:g} and {value.end:g}")
        if "log" in value.tags and value.start <= 0:
            raise ConfigError(line, "a log interval needs low > 0")
        return [repr(value.start), repr(value.end)]
    if isinstance(value, RangeSweep) and not value.shuffle:
        if value.step == 0 or (value.stop - value.start) * value.step < 0:
            raise ConfigError(line, "a range() needs a step that goes from its start towards its stop")
        return [repr(value.start), repr(value.stop)]
    values = list(override.sweep_string_iterator())
    if isinstance(value, (ChoiceSweep, RangeSweep)) and not values:
        raise ConfigError(line, "gives no value to sample")
    return values


def _interval_hint(override, err: ConfigError) -> str:
    if isinstance(override.value(), IntervalSweep) and "whole number" in str(err):
        return (f"; interval() draws real numbers: for a whole-number key write "
                f"{override.key_or_group}=int(interval(...)) or range(...)")
    return ""

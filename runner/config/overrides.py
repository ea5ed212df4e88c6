"""Command-line overrides, read by Hydra's own parser: as typed (an ``${oc.env:...}`` value is
never resolved into a run's name or tags), and as ``key -> value`` text."""

from __future__ import annotations

import functools

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import OverrideParseException
from omegaconf import OmegaConf


def typed_overrides(hydra_node) -> list[str]:
    """The command line's overrides as typed: ``description=${oc.env:TOKEN}`` stays so (read through
    OmegaConf it would resolve, and a secret would reach the run's name and tags)."""
    return [str(o) for o in OmegaConf.to_container(hydra_node.overrides.task, resolve=False)]


def sweep_params(hydra_node) -> dict[str, str]:
    """The sweep the sweeper is given in the config (``hydra.sweeper.params``: a preset's own), key ->
    values as typed."""
    params = OmegaConf.to_container(hydra_node.sweeper, resolve=False).get("params") or {}
    return {str(key): str(value) for key, value in params.items()}


@functools.cache
def _parser() -> OverridesParser:
    return OverridesParser.create()


def parsed(overrides: list[str]) -> list[Override]:
    """``overrides`` as Hydra's ``Override`` objects (key, value, sweep or not, ``+``/``~``).  Each
    distinct string is parsed once per process (a grid of 1000 jobs repeats the same few dozen: Hydra's
    ANTLR parser takes ~0.3 ms each); the objects are shared, read them only."""
    return [_parsed_one(line) for line in overrides]


@functools.lru_cache(maxsize=65536)
def _parsed_one(line: str) -> Override:
    return _parser().parse_overrides([line])[0]


def value_text(override: Override) -> str:
    """An override's value as typed: ``1e-3``, ``relu``, ``1,2,3`` for a sweep, ``""`` for ``~key``."""
    return override.input_line.partition("=")[2] if override.input_line else override.get_value_element_as_str()


def key_values(overrides: list[str]) -> dict[str, str]:
    """``{"optimizer.lr": "0.1", ...}`` for ``overrides`` (keys without ``+``/``~``; the last one wins)."""
    return {o.key_or_group: value_text(o) for o in parsed(overrides)}


def override_value(overrides: list[str], key: str) -> str | None:
    """The value ``overrides`` give ``key`` (as typed), or None (also when they do not parse)."""
    try:
        return key_values(overrides).get(key)
    except OverrideParseException:
        return None


def readable_key_values(overrides: list[str]) -> dict[str, str]:
    """``key_values``, or nothing where the overrides do not parse (Hydra says why when it composes)."""
    try:
        return key_values(overrides)
    except OverrideParseException:
        return {}

"""Registries and the engine's own parameter errors.

The engine names its parameters as its functions do (``lr``, ``std``, ``n_samples``); a program
that maps them to its own keys (the runner's ``optimizer.lr``...) reads ``ParameterError.param``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ParameterError", "lookup", "build"]


class ParameterError(ValueError):
    """A parameter breaks its rule: ``ParameterError("lr", 0.0, "must be > 0")`` reads
    ``lr=0.0: must be > 0``; without a value (an array, say), ``X: has empty rows``."""

    def __init__(self, param: str, value: Any, rule: str, *, show_value: bool = True) -> None:
        self.param, self.value, self.rule, self.show_value = param, value, rule, show_value
        super().__init__(f"{param}={value!r}: {rule}" if show_value else f"{param}: {rule}")


def lookup(kind: str, name: str, registry: Mapping[str, Callable]) -> Callable:
    """``registry[name]``; an unknown name is a ValueError that lists the valid ones."""
    if name not in registry:
        raise ValueError(f"{kind}={name!r} is unknown; valid names: {', '.join(sorted(registry))}")
    return registry[name]


def build(kind: str, name: str, registry: Mapping[str, Callable], **params: Any):
    """``registry[name](**params)``; a keyword the factory does not take is a ParameterError."""
    factory = lookup(kind, name, registry)
    try:
        return factory(**params)
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        unexpected = str(err).split("'")[1]
        raise ParameterError(unexpected, params[unexpected], f"not a parameter of {kind} {name!r}") from None

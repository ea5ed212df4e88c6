"""Registries and the engine's own parameter errors.

The engine names its parameters as its functions do (``lr``, ``std``, ``n_samples``); a program
that maps them to its own keys (the runner's ``optimizer.lr``...) reads ``ParameterError.param``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["ParameterError", "lookup", "build", "parameters"]


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


def parameters(factory: Callable) -> Mapping[str, inspect.Parameter] | None:
    """The keywords ``factory`` takes, from its signature; None when it takes any (``**kwargs``).
    Read once per factory (``inspect.signature`` takes ~50 µs, and a sweep builds each job)."""
    try:
        return _parameters(factory)
    except TypeError:  # an unhashable callable
        return _parameters.__wrapped__(factory)


@functools.lru_cache(maxsize=1024)
def _parameters(factory: Callable) -> Mapping[str, inspect.Parameter] | None:
    accepted = inspect.signature(factory).parameters
    return None if any(p.kind is p.VAR_KEYWORD for p in accepted.values()) else MappingProxyType(dict(accepted))


def build(kind: str, name: str, registry: Mapping[str, Callable], **params: Any):
    """``registry[name](**params)``; a keyword the factory's signature does not take is a ParameterError
    (read from the signature, never from a TypeError's text)."""
    factory = lookup(kind, name, registry)
    accepted = parameters(factory)
    for key in params:
        if accepted is not None and key not in accepted:
            valid = ", ".join(p for p in accepted if p != "rng") or "none"
            raise ParameterError(key, params[key], f"not a parameter of {kind} {name!r}; its parameters: {valid}")
    return factory(**params)

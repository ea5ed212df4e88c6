"""Optimizers as explicit-state ``init``/``update`` pairs, and gradient clipping as transforms of
the same kind, composed with ``chain`` (optax's design).

``state = opt.init(params)`` and ``updates, state = opt.update(grads, state)`` work on
flat arrays (``Network.trainable`` and ``Network.trainable_grads``); the caller applies
``params += updates``.  State is a named tuple keyed by position, never by name.
Conventions follow PyTorch's, so numbers can be checked against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

from .diagnostics import sum_of_squares
from .registry import ParameterError, build

__all__ = [
    "Optimizer", "SGD", "Momentum", "RMSprop", "Adam", "OPTIMIZERS", "get_optimizer",
    "ClipByGlobalNorm", "ClipByValue", "Chain", "chain", "clip_by_global_norm", "clip_by_value",
]


class Optimizer(Protocol):
    """A gradient transformation: ``init`` makes its state, ``update`` maps gradients to what is
    added to the parameters (an optimizer) or to other gradients (a clipping)."""

    def init(self, params: np.ndarray) -> Any: ...

    def update(self, grads: np.ndarray, state: Any) -> tuple[np.ndarray, Any]: ...


def _check(key: str, value: float, ok: bool, rule: str) -> None:
    if not ok:
        raise ParameterError(key, value, rule)


class EmptyState(NamedTuple):
    pass


class MomentumState(NamedTuple):
    velocity: np.ndarray


class RMSpropState(NamedTuple):
    square_avg: np.ndarray


class AdamState(NamedTuple):
    count: int
    mu: np.ndarray  # first moment
    nu: np.ndarray  # second moment


@dataclass(frozen=True)
class SGD:
    """Plain gradient descent: update = -lr g."""

    lr: float

    def __post_init__(self) -> None:
        _check("lr", self.lr, self.lr > 0, "must be > 0")

    def init(self, params: np.ndarray) -> EmptyState:
        return EmptyState()

    def update(self, grads: np.ndarray, state: EmptyState) -> tuple[np.ndarray, EmptyState]:
        return -self.lr * grads, state


@dataclass(frozen=True)
class Momentum:
    """Heavy ball: v = mu v + g, update = -lr v; Nesterov: update = -lr (g + mu v)."""

    lr: float
    momentum: float = 0.9
    nesterov: bool = False

    def __post_init__(self) -> None:
        _check("lr", self.lr, self.lr > 0, "must be > 0")
        _check("momentum", self.momentum, 0 <= self.momentum < 1, "must be in [0, 1)")

    def init(self, params: np.ndarray) -> MomentumState:
        return MomentumState(np.zeros_like(params))

    def update(self, grads: np.ndarray, state: MomentumState) -> tuple[np.ndarray, MomentumState]:
        velocity = self.momentum * state.velocity + grads
        direction = grads + self.momentum * velocity if self.nesterov else velocity
        return -self.lr * direction, MomentumState(velocity)


@dataclass(frozen=True)
class RMSprop:
    """s = rho s + (1 - rho) g^2, update = -lr g / (sqrt(s) + eps)."""

    lr: float
    rho: float = 0.9
    eps: float = 1e-8

    def __post_init__(self) -> None:
        _check("lr", self.lr, self.lr > 0, "must be > 0")
        _check("rho", self.rho, 0 <= self.rho < 1, "must be in [0, 1)")
        _check("eps", self.eps, self.eps > 0, "must be > 0")

    def init(self, params: np.ndarray) -> RMSpropState:
        return RMSpropState(np.zeros_like(params))

    def update(self, grads: np.ndarray, state: RMSpropState) -> tuple[np.ndarray, RMSpropState]:
        square_avg = self.rho * state.square_avg + (1.0 - self.rho) * grads * grads
        return -self.lr * grads / (np.sqrt(square_avg) + self.eps), RMSpropState(square_avg)


@dataclass(frozen=True)
class Adam:
    """Kingma & Ba 2015 with bias correction: update = -lr m_hat / (sqrt(v_hat) + eps)."""

    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        _check("lr", self.lr, self.lr > 0, "must be > 0")
        _check("beta1", self.beta1, 0 <= self.beta1 < 1, "must be in [0, 1)")
        _check("beta2", self.beta2, 0 <= self.beta2 < 1, "must be in [0, 1)")
        _check("eps", self.eps, self.eps > 0, "must be > 0")

    def init(self, params: np.ndarray) -> AdamState:
        return AdamState(0, np.zeros_like(params), np.zeros_like(params))

    def update(self, grads: np.ndarray, state: AdamState) -> tuple[np.ndarray, AdamState]:
        count = state.count + 1
        mu = self.beta1 * state.mu + (1.0 - self.beta1) * grads
        nu = self.beta2 * state.nu + (1.0 - self.beta2) * grads * grads
        mu_hat = mu / (1.0 - self.beta1**count)
        nu_hat = nu / (1.0 - self.beta2**count)
        return -self.lr * mu_hat / (np.sqrt(nu_hat) + self.eps), AdamState(count, mu, nu)


OPTIMIZERS: dict[str, type] = {"sgd": SGD, "momentum": Momentum, "rmsprop": RMSprop, "adam": Adam}


def get_optimizer(name: str, **params):
    """The optimizer registered as ``name``, built with its hyper-parameters (``lr`` and others)."""
    return build("optimizer", name, OPTIMIZERS, **params)


def clip_by_global_norm(grads: np.ndarray, max_norm: float, norm: float | None = None) -> np.ndarray:
    """Scale ``grads`` by ``max_norm / ||grads||`` when the norm exceeds ``max_norm`` (a non-finite
    norm leaves them as they are: the divergence guard, not the clipping, deals with them)."""
    norm = math.sqrt(sum_of_squares(grads)) if norm is None else norm
    return grads * (max_norm / norm) if math.isfinite(norm) and norm > max_norm else grads


def clip_by_value(grads: np.ndarray, max_value: float) -> np.ndarray:
    """Clip every component of ``grads`` into ``[-max_value, max_value]``."""
    return np.clip(grads, -max_value, max_value)


class _Stateless:
    """A gradient transform without state: ``apply`` maps the gradients."""

    def init(self, params: np.ndarray) -> EmptyState:
        return EmptyState()

    def update(self, grads: np.ndarray, state: EmptyState) -> tuple[np.ndarray, EmptyState]:
        return self.apply(grads), state


@dataclass(frozen=True)
class ClipByGlobalNorm(_Stateless):
    """Gradients scaled to a global norm of at most ``max_norm`` (PyTorch's ``clip_grad_norm_``)."""

    max_norm: float

    def apply(self, grads: np.ndarray) -> np.ndarray:
        return clip_by_global_norm(grads, self.max_norm)


@dataclass(frozen=True)
class ClipByValue(_Stateless):
    """Every gradient component clipped into ``[-max_value, max_value]``."""

    max_value: float

    def apply(self, grads: np.ndarray) -> np.ndarray:
        return clip_by_value(grads, self.max_value)


@dataclass(frozen=True)
class Chain:
    """The transforms applied one after the other; the state is theirs, a tuple in the same order."""

    transforms: tuple[Optimizer, ...]

    def init(self, params: np.ndarray) -> tuple:
        return tuple(transform.init(params) for transform in self.transforms)

    def update(self, grads: np.ndarray, state: tuple) -> tuple[np.ndarray, tuple]:
        states = []
        for transform, own in zip(self.transforms, state):
            grads, own = transform.update(grads, own)
            states.append(own)
        return grads, tuple(states)


def chain(*transforms: Optimizer) -> Optimizer:
    """``transforms`` composed (``chain(ClipByGlobalNorm(1.0), Adam(1e-3))``); a single one as it is."""
    return transforms[0] if len(transforms) == 1 else Chain(tuple(transforms))

"""Activation functions, each with its derivative right beside it.

Every activation maps pre-activations ``Z`` of shape ``(n_samples, n_units)`` to
activations ``A`` of the same shape.  ``derivative(Z, A)`` is f'(z), computed from ``Z``
so that it stays exact (not merely finite) in saturation: ``a (1 - a)`` would round to 0
long before sigma'(z) does.  ``backward(Z, A, dL_dA)`` returns ``dL_dZ = dL_dA f'(z)``.
All forms are stable: no overflow or NaN at ``|z|`` up to the float's maximum.

One saturation rule for every activation: an entry is saturated where
``|f'(z)| < SATURATION_EPS * max |f'|``; ``has_dead_region`` marks the activations whose
derivative is exactly 0 on a region (ReLU), the only ones whose units can be dead.
"""

from __future__ import annotations

import math

import numpy as np

from .registry import ParameterError, build

__all__ = ["Activation", "ACTIVATIONS", "get_activation", "SATURATION_EPS"]

SATURATION_EPS = 0.05  # saturated: the derivative below 5 % of its largest value
_GELU_C = math.sqrt(2.0 / math.pi)


def _sigmoid(Z: np.ndarray) -> np.ndarray:
    # exp of a non-positive number never overflows: 1/(1+e^-z) for z >= 0, e^z/(1+e^z) otherwise
    E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1.0 / (1.0 + E), E / (1.0 + E))


def _sigmoid_derivative(Z: np.ndarray) -> np.ndarray:
    """sigma(z) sigma(-z) = e^-|z| / (1 + e^-|z|)^2: exact in both tails."""
    E = np.exp(-np.abs(Z))
    return E / np.square(1.0 + E)


def _lse_parts(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(top, m, l)`` with log sum_j e^z_j = m + l per row: ``m`` the row's largest entry (at column
    ``top``), ``l = log1p(sum of the other e^(z - m))``: its own term is exactly 1, and log(1 + 2e-9)
    would lose 7 digits."""
    rows, top = np.arange(len(Z)), Z.argmax(axis=1)
    m = Z[rows, top][:, None]
    E = np.exp(Z - m)
    E[rows, top] = 0.0
    return top, m, np.log1p(E.sum(axis=1, keepdims=True))


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """log softmax(z) = (z - m) - l, never forming m + l (which would round l away)."""
    _, m, l = _lse_parts(Z)
    return (Z - m) - l


def softmax_logs(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log a`` and ``log(1 - a)`` of ``a = softmax(z)``, both exact in saturation, O(n k).

    Below a row's largest entry ``a <= 1/2``, so ``log1p(-a)`` is exact; at the largest, ``1 - a`` is
    the other entries' share, ``log sum_{j != top} e^z_j - log sum_j e^z_j``.
    """
    rows = np.arange(len(Z))
    top, m, l = _lse_parts(Z)
    log_a = (Z - m) - l
    others = Z.copy()
    others[rows, top] = -np.inf
    _, m2, l2 = _lse_parts(others)
    a_below_top = np.exp(log_a)
    a_below_top[rows, top] = 0.0
    log_1ma = np.log1p(-a_below_top)
    log_1ma[rows, top] = (((m2 - m) + l2) - l)[:, 0]
    return log_a, log_1ma


class Activation:
    """Base class: identity.  Subclasses override ``forward`` and ``derivative``."""

    name = "identity"
    output_range = (-math.inf, math.inf)  # open interval that A lies in
    elementwise = True
    max_derivative = 1.0  # the supremum of |f'|: the scale of the saturation rule
    has_dead_region = False  # f' is exactly 0 on a region: units can die

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return Z  # no copy: nothing writes to Z after the forward pass

    def derivative(self, Z: np.ndarray, A: np.ndarray) -> np.ndarray:
        return np.ones_like(Z)

    def backward(self, Z: np.ndarray, A: np.ndarray, dL_dA: np.ndarray) -> np.ndarray:
        return dL_dA * self.derivative(Z, A)

    def saturated(self, Z: np.ndarray, A: np.ndarray) -> np.ndarray:
        """Where ``|f'(z)| < SATURATION_EPS * max |f'|``."""
        return np.abs(self.derivative(Z, A)) < SATURATION_EPS * self.max_derivative


class Identity(Activation):
    def backward(self, Z, A, dL_dA):
        return dL_dA


class Sigmoid(Activation):
    name = "sigmoid"
    output_range = (0.0, 1.0)
    max_derivative = 0.25

    def forward(self, Z):
        return _sigmoid(Z)

    def derivative(self, Z, A):  # sigma' = sigma(z) sigma(-z)
        return _sigmoid_derivative(Z)


class Tanh(Activation):
    name = "tanh"
    output_range = (-1.0, 1.0)

    def forward(self, Z):
        return np.tanh(Z)

    def derivative(self, Z, A):  # tanh' = sech^2 z = 4 e^-2|z| / (1 + e^-2|z|)^2, exact where 1 - a^2 is 0
        E = np.exp(-2.0 * np.abs(Z))
        return 4.0 * E / np.square(1.0 + E)


class ReLU(Activation):
    name = "relu"
    output_range = (0.0, math.inf)
    has_dead_region = True

    def forward(self, Z):
        return np.maximum(Z, 0.0)

    def derivative(self, Z, A):  # relu' = 1[z > 0] (0 at z = 0, as in PyTorch)
        return (Z > 0).astype(Z.dtype)

    def backward(self, Z, A, dL_dA):
        return dL_dA * (Z > 0)


class LeakyReLU(Activation):
    name = "leaky_relu"

    def __init__(self, alpha: float = 0.01) -> None:
        if not (math.isfinite(alpha) and alpha >= 0):
            raise ParameterError("alpha", alpha, "must be a finite number >= 0")
        self.alpha = float(alpha)
        self.max_derivative = max(1.0, self.alpha)

    def __repr__(self) -> str:
        return f"LeakyReLU(alpha={self.alpha})"

    def forward(self, Z):
        return np.where(Z > 0, Z, self.alpha * Z)

    def derivative(self, Z, A):
        return np.where(Z > 0, 1.0, self.alpha).astype(Z.dtype, copy=False)


class ELU(Activation):
    name = "elu"

    def __init__(self, alpha: float = 1.0) -> None:
        if not (math.isfinite(alpha) and alpha > 0):
            raise ParameterError("alpha", alpha, "must be a finite number > 0")
        self.alpha = float(alpha)
        self.output_range = (-self.alpha, math.inf)
        self.max_derivative = max(1.0, self.alpha)

    def __repr__(self) -> str:
        return f"ELU(alpha={self.alpha})"

    def forward(self, Z):
        # expm1 of a non-positive number never overflows
        return np.where(Z > 0, Z, self.alpha * np.expm1(np.minimum(Z, 0.0)))

    def derivative(self, Z, A):  # 1 for z > 0, alpha e^z otherwise (a + alpha would cancel for z << 0)
        return np.where(Z > 0, 1.0, self.alpha * np.exp(np.minimum(Z, 0.0))).astype(Z.dtype, copy=False)


class Softplus(Activation):
    name = "softplus"
    output_range = (0.0, math.inf)

    def forward(self, Z):  # log(1 + e^z) = max(z, 0) + log1p(e^-|z|)
        return np.maximum(Z, 0.0) + np.log1p(np.exp(-np.abs(Z)))

    def derivative(self, Z, A):  # softplus' = sigma(z)
        return _sigmoid(Z)


class Softsign(Activation):
    name = "softsign"
    output_range = (-1.0, 1.0)

    def forward(self, Z):
        return Z / (1.0 + np.abs(Z))

    def derivative(self, Z, A):  # softsign' = 1 / (1 + |z|)^2, squared after the division: no overflow
        return np.square(1.0 / (1.0 + np.abs(Z)))


class GELU(Activation):
    """GELU in its tanh form (Hendrycks & Gimpel 2016; PyTorch's ``approximate='tanh'``).

    NumPy has no ``erf``; the tanh form differs from the exact one by less than 1e-3.
    """

    name = "gelu"
    output_range = (-0.17, math.inf)
    max_derivative = 1.12899  # sup of gelu' (1.128993 at z = 1.4185, on a 1e-5 grid)

    def forward(self, Z):  # z/2 (1 + tanh u) = z sigma(2u): exact where 1 + tanh u rounds to 0
        return Z * _sigmoid(2.0 * self._inner(Z))

    def derivative(self, Z, A):
        # d/dz [z sigma(2u)] = sigma(2u) + 2 z sigma(2u) sigma(-2u) u'; the clipped z keeps z u' finite
        # (beyond |z| = 1e4, sigma(2u) sigma(-2u) is exactly 0)
        Zc = np.clip(Z, -1e4, 1e4)
        U2 = 2.0 * self._inner(Zc)
        S = _sigmoid(U2)
        du_dz = _GELU_C * (1.0 + 3 * 0.044715 * Zc * Zc)
        return S + 2.0 * Zc * S * _sigmoid(-U2) * du_dz

    @staticmethod
    def _inner(Z):
        # clipping keeps z^3 finite; sigma(2u) is exactly 0 or 1 long before |u| = 1e4
        Zc = np.clip(Z, -1e4, 1e4)
        return _GELU_C * (Zc + 0.044715 * Zc * Zc * Zc)


class Softmax(Activation):
    """Softmax over units; an output activation only (it couples the units of a sample)."""

    name = "softmax"
    output_range = (0.0, 1.0)
    elementwise = False
    max_derivative = 0.25  # of the Jacobian's diagonal a (1 - a)

    def forward(self, Z):
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)

    def backward(self, Z, A, dL_dA):
        # Jacobian-vector product dL_dZ_i = a_i (g_i - sum_j a_j g_j), written a_i ((1 - a_i) g_i -
        # sum_{j != i} a_j g_j): with 1 - a_i from the logits and the largest entry's sum over the others
        # taken directly, nothing cancels where that entry's a rounds to 1
        rows, top = np.arange(len(Z)), Z.argmax(axis=1)
        AG = A * dL_dA
        others = AG.sum(axis=1, keepdims=True) - AG
        AG[rows, top] = 0.0
        others[rows, top] = AG.sum(axis=1)
        one_minus_a = np.exp(softmax_logs(Z)[1])
        return A * (one_minus_a * dL_dA - others)

    def derivative(self, Z, A):
        """The Jacobian's diagonal da_i/dz_i = a_i (1 - a_i): what the saturation rule reads for a softmax
        unit (saturated when it is near 0 or near 1 on its sample)."""
        return A * (1.0 - A)


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls
    for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, Softplus, Softsign, GELU, Softmax)
}


def get_activation(name: str, **params: float) -> Activation:
    """The activation registered as ``name``, built with its parameters (e.g. ``alpha``)."""
    return build("activation", name, ACTIVATIONS, **params)

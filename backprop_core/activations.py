"""Activation functions, each with its derivative right beside it.

Every activation maps pre-activations ``Z`` of shape ``(n_samples, n_units)`` to
activations ``A`` of the same shape.  ``derivative(Z, A)`` is f'(z), computed from ``Z``
so that it stays exact (not merely finite) in saturation: ``a (1 - a)`` would round to 0
long before sigma'(z) does.  ``backward(Z, A, dL_dA)`` returns ``dL_dZ = dL_dA f'(z)``.
All forms are stable: no overflow or NaN at ``|z|`` up to the float's maximum.

``forward`` and ``derivative`` take an optional ``out`` array to write into (the network's
buffers, allocated once per batch size) and return the result.

One saturation rule for every activation: an entry is saturated where
``|f'(z)| < SATURATION_EPS * max |f'|``; ``has_dead_region`` marks the activations whose
derivative is exactly 0 on a region (ReLU), the only ones whose units can be dead.
"""

from __future__ import annotations

import math

import numpy as np

from .log_space import softmax_logs
from .registry import ParameterError, build

__all__ = ["Activation", "ACTIVATIONS", "get_activation", "SATURATION_EPS"]

SATURATION_EPS = 0.05  # saturated: the derivative below 5 % of its largest value
_GELU_C = math.sqrt(2.0 / math.pi)


def _into(out: np.ndarray | None, value: np.ndarray) -> np.ndarray:
    """``value``, copied into ``out`` when one is given (for forms that cannot write in place)."""
    if out is None:
        return value
    out[...] = value
    return out


def _exp_minus_abs(Z: np.ndarray, scale: float, out: np.ndarray | None) -> np.ndarray:
    """e^(-scale |z|), in ``out`` if given: the one exponential the exact derivatives need."""
    E = np.abs(Z, out=out)
    E *= -scale
    return np.exp(E, out=E)


def _bell(E: np.ndarray, peak: float) -> np.ndarray:
    """``4 peak E / (1 + E)^2`` in place of ``E``: sigma' (peak 1/4) and tanh' (peak 1) from E = e^(-c|z|)."""
    denominator = E + 1.0
    np.square(denominator, out=denominator)
    E *= 4.0 * peak
    E /= denominator
    return E


def _sigmoid(Z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1/(1+e^-|z|) for z >= 0 and, from the same exponential, e^-|z|/(1+e^-|z|) below: exp of a
    non-positive number never overflows, and neither tail is 1 minus something that rounds away."""
    E = _exp_minus_abs(Z, 1.0, None)
    S = np.add(E, 1.0, out=out)
    np.reciprocal(S, out=S)
    return np.multiply(S, E, out=S, where=Z < 0)


def _sigmoid_derivative(Z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """sigma(z) sigma(-z) = e^-|z| / (1 + e^-|z|)^2: exact in both tails."""
    return _bell(_exp_minus_abs(Z, 1.0, out), 0.25)


class Activation:
    """Base class: identity.  Subclasses override ``forward`` and ``derivative``."""

    name = "identity"
    output_range = (-math.inf, math.inf)  # open interval that A lies in
    elementwise = True
    max_derivative = 1.0  # the supremum of |f'|: the scale of the saturation rule
    has_dead_region = False  # f' is exactly 0 on a region: units can die
    constant_derivative = False  # f' is the same everywhere (the identity): nothing can saturate

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def forward(self, Z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return _into(out, Z)  # no copy unless asked for one: nothing writes to Z after the forward pass

    def derivative(self, Z: np.ndarray, A: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            return np.ones_like(Z)
        out.fill(1.0)
        return out

    def backward(self, Z: np.ndarray, A: np.ndarray, dL_dA: np.ndarray) -> np.ndarray:
        return dL_dA * self.derivative(Z, A)

    @property
    def saturation_threshold(self) -> float:
        """``SATURATION_EPS * max |f'|``: an entry is saturated where ``|f'(z)|`` is below it."""
        return SATURATION_EPS * self.max_derivative

    def saturated(self, Z: np.ndarray, A: np.ndarray) -> np.ndarray:
        """Where ``|f'(z)| < SATURATION_EPS * max |f'|``."""
        return np.abs(self.derivative(Z, A)) < self.saturation_threshold


class Identity(Activation):
    constant_derivative = True

    def backward(self, Z, A, dL_dA):
        return dL_dA


class Sigmoid(Activation):
    name = "sigmoid"
    output_range = (0.0, 1.0)
    max_derivative = 0.25

    def forward(self, Z, out=None):
        return _sigmoid(Z, out)

    def derivative(self, Z, A, out=None):  # sigma' = sigma(z) sigma(-z)
        return _sigmoid_derivative(Z, out)


class Tanh(Activation):
    name = "tanh"
    output_range = (-1.0, 1.0)

    def forward(self, Z, out=None):
        return np.tanh(Z, out=out)

    def derivative(self, Z, A, out=None):  # tanh' = sech^2 z = 4 e^-2|z| / (1 + e^-2|z|)^2, exact where 1 - a^2 is 0
        return _bell(_exp_minus_abs(Z, 2.0, out), 1.0)


class ReLU(Activation):
    name = "relu"
    output_range = (0.0, math.inf)
    has_dead_region = True

    def forward(self, Z, out=None):
        return np.maximum(Z, 0.0, out=out)

    def derivative(self, Z, A, out=None):  # relu' = 1[z > 0] (0 at z = 0, as in PyTorch): a Heaviside step
        return np.heaviside(Z, 0.0, out=out)

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

    def forward(self, Z, out=None):
        return _into(out, np.where(Z > 0, Z, self.alpha * Z))

    def derivative(self, Z, A, out=None):
        return _into(out, np.where(Z > 0, 1.0, self.alpha).astype(Z.dtype, copy=False))


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

    def forward(self, Z, out=None):
        # expm1 of a non-positive number never overflows
        return _into(out, np.where(Z > 0, Z, self.alpha * np.expm1(np.minimum(Z, 0.0))))

    def derivative(self, Z, A, out=None):  # 1 for z > 0, alpha e^z otherwise (a + alpha would cancel for z << 0)
        return _into(out, np.where(Z > 0, 1.0, self.alpha * np.exp(np.minimum(Z, 0.0))).astype(Z.dtype, copy=False))


class Softplus(Activation):
    name = "softplus"
    output_range = (0.0, math.inf)

    def forward(self, Z, out=None):  # log(1 + e^z) = max(z, 0) + log1p(e^-|z|)
        return _into(out, np.maximum(Z, 0.0) + np.log1p(np.exp(-np.abs(Z))))

    def derivative(self, Z, A, out=None):  # softplus' = sigma(z)
        return _sigmoid(Z, out)


class Softsign(Activation):
    name = "softsign"
    output_range = (-1.0, 1.0)

    def forward(self, Z, out=None):
        return _into(out, Z / (1.0 + np.abs(Z)))

    def derivative(self, Z, A, out=None):  # softsign' = 1 / (1 + |z|)^2, squared after the division: no overflow
        return _into(out, np.square(1.0 / (1.0 + np.abs(Z))))


class GELU(Activation):
    """GELU in its tanh form (Hendrycks & Gimpel 2016; PyTorch's ``approximate='tanh'``).

    NumPy has no ``erf``; the tanh form differs from the exact one by less than 1e-3.
    """

    name = "gelu"
    output_range = (-0.17, math.inf)
    max_derivative = 1.12899  # sup of gelu' (1.128993 at z = 1.4185, on a 1e-5 grid)

    def forward(self, Z, out=None):  # z/2 (1 + tanh u) = z sigma(2u): exact where 1 + tanh u rounds to 0
        return _into(out, Z * _sigmoid(2.0 * self._inner(Z)))

    def derivative(self, Z, A, out=None):
        # d/dz [z sigma(2u)] = sigma(2u) + 2 z sigma(2u) sigma(-2u) u'; the clipped z keeps z u' finite
        # (beyond |z| = 1e4, sigma(2u) sigma(-2u) is exactly 0)
        Zc = np.clip(Z, -1e4, 1e4)
        U2 = 2.0 * self._inner(Zc)
        S = _sigmoid(U2)
        du_dz = _GELU_C * (1.0 + 3 * 0.044715 * Zc * Zc)
        return _into(out, S + 2.0 * Zc * S * _sigmoid(-U2) * du_dz)

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

    def forward(self, Z, out=None):
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return _into(out, E / E.sum(axis=1, keepdims=True))

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

    def derivative(self, Z, A, out=None):
        """The Jacobian's diagonal da_i/dz_i = a_i (1 - a_i): what the saturation rule reads for a softmax
        unit (saturated when it is near 0 or near 1 on its sample)."""
        return _into(out, A * (1.0 - A))


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls
    for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, Softplus, Softsign, GELU, Softmax)
}


def get_activation(name: str, **params: float) -> Activation:
    """The activation registered as ``name``, built with its parameters (e.g. ``alpha``)."""
    return build("activation", name, ACTIVATIONS, **params)

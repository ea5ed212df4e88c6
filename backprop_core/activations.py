"""Activation functions, each with its derivative right beside it.

Every activation maps pre-activations ``Z`` of shape ``(n_samples, n_units)`` to
activations ``A`` of the same shape.  ``backward(Z, A, dL_dA)`` returns ``dL_dZ``;
it may use whichever of ``Z`` or ``A`` gives the cheaper or more stable formula.
All forms are numerically stable: finite values, finite gradients and no NumPy
warnings at ``|z| = 1000``.

``saturated(Z, A)`` marks the entries sitting where the derivative is nearly zero
(the activation-specific definition used by the saturation diagnostic).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Activation", "ACTIVATIONS", "get_activation"]

_GELU_C = math.sqrt(2.0 / math.pi)


def _sigmoid(Z: np.ndarray) -> np.ndarray:
    # exp of a non-positive number never overflows: 1/(1+e^-z) for z >= 0, e^z/(1+e^z) otherwise
    E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1.0 / (1.0 + E), E / (1.0 + E))


class Activation:
    """Base class: identity.  Subclasses override ``forward``, ``backward`` and ``saturated``."""

    name = "identity"
    output_range = (-math.inf, math.inf)  # open interval that A lies in
    elementwise = True

    def __init__(self, **params: float) -> None:
        if params:
            raise ValueError(f"activation {self.name!r} takes no parameters, got {sorted(params)}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return Z  # no copy: nothing writes to Z after the forward pass

    def backward(self, Z: np.ndarray, A: np.ndarray, dL_dA: np.ndarray) -> np.ndarray:
        return dL_dA

    def saturated(self, Z: np.ndarray, A: np.ndarray) -> np.ndarray:
        return np.zeros(Z.shape, dtype=bool)


class Sigmoid(Activation):
    name = "sigmoid"
    output_range = (0.0, 1.0)

    def forward(self, Z):
        return _sigmoid(Z)

    def backward(self, Z, A, dL_dA):  # sigma' = a (1 - a)
        return dL_dA * (A * (1.0 - A))

    def saturated(self, Z, A):  # within 0.01 of 0 or 1: sigma' < 0.0099
        return np.abs(A - 0.5) > 0.49


class Tanh(Activation):
    name = "tanh"
    output_range = (-1.0, 1.0)

    def forward(self, Z):
        return np.tanh(Z)

    def backward(self, Z, A, dL_dA):  # tanh' = 1 - a^2
        return dL_dA * (1.0 - A * A)

    def saturated(self, Z, A):  # Karpathy's |tanh| > 0.97: tanh' < 0.06
        return np.abs(A) > 0.97


class ReLU(Activation):
    name = "relu"
    output_range = (0.0, math.inf)

    def forward(self, Z):
        return np.maximum(Z, 0.0)

    def backward(self, Z, A, dL_dA):  # relu' = 1[z > 0] (0 at z = 0, as in PyTorch)
        return dL_dA * (Z > 0)

    def saturated(self, Z, A):  # the flat half: no gradient flows
        return Z <= 0


class LeakyReLU(Activation):
    name = "leaky_relu"

    def __init__(self, alpha: float = 0.01) -> None:
        self.alpha = float(alpha)

    def __repr__(self) -> str:
        return f"LeakyReLU(alpha={self.alpha})"

    def forward(self, Z):
        return np.where(Z > 0, Z, self.alpha * Z)

    def backward(self, Z, A, dL_dA):
        return dL_dA * np.where(Z > 0, 1.0, self.alpha).astype(Z.dtype, copy=False)

    def saturated(self, Z, A):  # the shallow (slope alpha) half
        return Z <= 0


class ELU(Activation):
    name = "elu"

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = float(alpha)
        self.output_range = (-self.alpha, math.inf)

    def __repr__(self) -> str:
        return f"ELU(alpha={self.alpha})"

    def forward(self, Z):
        # expm1 of a non-positive number never overflows
        return np.where(Z > 0, Z, self.alpha * np.expm1(np.minimum(Z, 0.0)))

    def backward(self, Z, A, dL_dA):  # elu' = 1 for z > 0, a + alpha otherwise
        return dL_dA * np.where(Z > 0, 1.0, A + self.alpha)

    def saturated(self, Z, A):  # elu' < 0.03 alpha
        return A < -0.97 * self.alpha


class Softplus(Activation):
    name = "softplus"
    output_range = (0.0, math.inf)

    def forward(self, Z):  # log(1 + e^z) = max(z, 0) + log1p(e^-|z|)
        return np.maximum(Z, 0.0) + np.log1p(np.exp(-np.abs(Z)))

    def backward(self, Z, A, dL_dA):  # softplus' = sigma(z)
        return dL_dA * _sigmoid(Z)

    def saturated(self, Z, A):  # softplus' = sigma(z) < 0.01
        return Z < -4.59511985013459  # logit(0.01)


class Softsign(Activation):
    name = "softsign"
    output_range = (-1.0, 1.0)

    def forward(self, Z):
        return Z / (1.0 + np.abs(Z))

    def backward(self, Z, A, dL_dA):  # softsign' = 1 / (1 + |z|)^2 = (1 - |a|)^2
        return dL_dA * np.square(1.0 - np.abs(A))

    def saturated(self, Z, A):  # same output threshold as tanh
        return np.abs(A) > 0.97


class GELU(Activation):
    """GELU in its tanh form (Hendrycks & Gimpel 2016; PyTorch's ``approximate='tanh'``).

    NumPy has no ``erf``; the tanh form differs from the exact one by less than 1e-3.
    """

    name = "gelu"
    output_range = (-0.17, math.inf)

    def forward(self, Z):
        return 0.5 * Z * (1.0 + np.tanh(self._inner(Z)))

    def backward(self, Z, A, dL_dA):
        # d/dz [z/2 (1 + tanh u)] = (1 + tanh u)/2 + z/2 (1 - tanh^2 u) u'
        T = np.tanh(self._inner(Z))
        du_dz = _GELU_C * (1.0 + 3 * 0.044715 * Z * Z)
        return dL_dA * (0.5 * (1.0 + T) + 0.5 * Z * (1.0 - T * T) * du_dz)

    def saturated(self, Z, A):  # |gelu'| < 0.012 on the negative side
        return Z < -3.0

    @staticmethod
    def _inner(Z):
        # clipping keeps z^3 finite; tanh is exactly +-1 long before |u| = 1e4
        Zc = np.clip(Z, -1e4, 1e4)
        return _GELU_C * (Zc + 0.044715 * Zc * Zc * Zc)


class Softmax(Activation):
    """Softmax over units; an output activation only (it couples the units of a sample)."""

    name = "softmax"
    output_range = (0.0, 1.0)
    elementwise = False

    def forward(self, Z):
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)

    def backward(self, Z, A, dL_dA):
        # Jacobian-vector product: dL_dZ_i = a_i (dL_dA_i - sum_j a_j dL_dA_j)
        return A * (dL_dA - np.sum(A * dL_dA, axis=1, keepdims=True))

    def saturated(self, Z, A):
        return np.abs(A - 0.5) > 0.49


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls
    for cls in (Activation, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, Softplus, Softsign, GELU, Softmax)
}


def get_activation(name: str, **params: float) -> Activation:
    """The activation registered as ``name``, built with its parameters (e.g. ``alpha``)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={name!r} is unknown; valid names: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name](**params)

"""Losses, each with its gradient beside it, averaged over samples.

``value(A, Y)`` is the scalar loss and ``dL_dA(A, Y)`` its gradient with respect to the
network output ``A``; both take arrays of shape ``(n_samples, n_outputs)``.  The network
calls ``value_and_delta(Z, A, Y, output)``, which returns the loss and ``dL_dZ`` of the
output layer.  For a log loss after a sigmoid or a softmax it works from the logits ``Z``
(log-sigmoid, log-sum-exp, and 1 - a computed without cancellation), so values and
gradients stay exact in saturation, not merely finite; every other pair takes the
general chain rule ``dL_dZ = f'(z) dL_dA`` (with softmax's Jacobian-vector product).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .activations import Activation
from .log_space import log_softmax, softmax_logs
from .registry import ParameterError, build

__all__ = ["Loss", "LOSSES", "get_loss"]


def _log_clipped(P: np.ndarray) -> np.ndarray:
    # only the general path needs this (a log loss after neither sigmoid nor softmax)
    return np.log(np.maximum(P, np.finfo(P.dtype).tiny))


def _log_sigmoid(Z: np.ndarray) -> np.ndarray:
    """log sigma(z) = -softplus(-z) = -(max(-z, 0) + log1p(e^-|z|))."""
    return -(np.maximum(-Z, 0.0) + np.log1p(np.exp(-np.abs(Z))))


def residual(Z: np.ndarray, A: np.ndarray, Y: np.ndarray, output: Activation) -> np.ndarray:
    """``a - y``, written ``(1 - y) a - y (1 - a)`` after a sigmoid or a softmax, with ``1 - a`` from
    the logits: exact where ``a`` rounds to 1 (``A - Y`` would read 0 for y = 1)."""
    if output.name == "sigmoid":
        return (1.0 - Y) * A - Y * output.forward(-Z)
    if output.name == "softmax":
        return (1.0 - Y) * A - Y * np.exp(softmax_logs(Z)[1])
    return A - Y


class Loss(ABC):
    name: str
    requires_unit_interval = False  # outputs must lie in (0, 1): probabilities

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    @abstractmethod
    def value(self, A: np.ndarray, Y: np.ndarray) -> float:
        """The scalar loss of outputs ``A`` against targets ``Y``."""

    @abstractmethod
    def dL_dA(self, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Its gradient with respect to ``A``, shape ``A.shape``."""

    def value_and_delta(self, Z: np.ndarray, A: np.ndarray, Y: np.ndarray,
                        output: Activation) -> tuple[float, np.ndarray]:
        """The loss and dL/dZ of the output layer (``A = output.forward(Z)``)."""
        return self.value(A, Y), output.backward(Z, A, self.dL_dA(A, Y))

    def value_at(self, Z: np.ndarray, A: np.ndarray, Y: np.ndarray, output: Activation) -> float:
        """The loss alone, from the logits where ``value_and_delta`` uses them."""
        return self.value(A, Y)

    def check_output(self, activation: Activation, n_outputs: int) -> None:
        """Raise ValueError if this loss makes no sense after ``activation`` with ``n_outputs`` units."""
        if activation.name == "softmax" and n_outputs < 2:
            raise ValueError(
                f"output activation 'softmax' needs at least 2 output units, got {n_outputs} "
                "(a softmax over one unit is constant 1): use sigmoid for a binary output"
            )
        low, high = activation.output_range
        if self.requires_unit_interval and (low < 0.0 or high > 1.0):
            raise ValueError(
                f"loss {self.name!r} needs outputs in (0, 1), but output activation "
                f"{activation.name!r} ranges over ({low}, {high}): use sigmoid or softmax"
            )


class MSE(Loss):
    """Squared error, mean over samples.

    ``sum_half``: L = 1/n sum_i 1/2 ||a_i - y_i||^2 (the articles' convention);
    ``mean``:     L = 1/(n k) sum_i ||a_i - y_i||^2 (PyTorch's ``MSELoss()``), k outputs.
    """

    name = "mse"
    CONVENTIONS = ("sum_half", "mean")

    def __init__(self, convention: str = "sum_half") -> None:
        if convention not in self.CONVENTIONS:
            raise ParameterError("convention", convention, f"unknown; valid conventions: {', '.join(self.CONVENTIONS)}")
        self.convention = convention

    def __repr__(self) -> str:
        return f"MSE(convention={self.convention!r})"

    def _scale(self, A: np.ndarray) -> float:
        n, k = A.shape
        return 0.5 / n if self.convention == "sum_half" else 1.0 / (n * k)

    def value(self, A, Y):
        D = A - Y
        return float(self._scale(A) * np.vdot(D, D))

    def dL_dA(self, A, Y):
        return (A - Y) * (2.0 * self._scale(A))

    def value_at(self, Z, A, Y, output):
        D = residual(Z, A, Y, output)
        return float(self._scale(A) * np.vdot(D, D))

    def value_and_delta(self, Z, A, Y, output):
        D = residual(Z, A, Y, output)
        return float(self._scale(A) * np.vdot(D, D)), output.backward(Z, A, D * (2.0 * self._scale(A)))


class BCE(Loss):
    """Binary cross-entropy, mean over samples; over the k outputs a mean (``mean``, PyTorch's
    ``BCELoss()``) or a sum (``sum``, Nielsen's cross-entropy cost):
    L = -1/(n k) sum [y log a + (1 - y) log(1 - a)]  or  -1/n sum [...]."""

    name = "bce"
    requires_unit_interval = True
    CONVENTIONS = ("mean", "sum")

    def __init__(self, convention: str = "mean") -> None:
        if convention not in self.CONVENTIONS:
            raise ParameterError("convention", convention, f"unknown; valid conventions: {', '.join(self.CONVENTIONS)}")
        self.convention = convention

    def __repr__(self) -> str:
        return f"BCE(convention={self.convention!r})"

    def _scale(self, A: np.ndarray) -> float:
        return 1.0 / (A.size if self.convention == "mean" else len(A))

    def value(self, A, Y):
        return float(-np.sum(Y * _log_clipped(A) + (1.0 - Y) * _log_clipped(1.0 - A)) * self._scale(A))

    def dL_dA(self, A, Y):
        tiny = np.finfo(A.dtype).tiny
        return ((A - Y) / np.maximum(A * (1.0 - A), tiny)) * self._scale(A)

    def _logs(self, Z: np.ndarray, output: Activation):
        if output.name == "sigmoid":  # log(1 - sigma(z)) = log sigma(-z)
            return _log_sigmoid(Z), _log_sigmoid(-Z)
        if output.name == "softmax":
            return softmax_logs(Z)
        return None

    def value_at(self, Z, A, Y, output):
        logs = self._logs(Z, output)
        if logs is None:
            return self.value(A, Y)
        log_a, log_1ma = logs
        return float(-np.sum(Y * log_a + (1.0 - Y) * log_1ma) * self._scale(A))

    def value_and_delta(self, Z, A, Y, output):
        if output.name == "sigmoid":  # d/dz = a - y, for any y in [0, 1]
            return self.value_at(Z, A, Y, output), residual(Z, A, Y, output) * self._scale(A)
        if output.name == "softmax":
            return self.value_at(Z, A, Y, output), self._softmax_delta(Z, A, Y) * self._scale(A)
        return super().value_and_delta(Z, A, Y, output)

    @staticmethod
    def _softmax_delta(Z, A, Y):
        """d/dz_i of sum_k -[y_k log a_k + (1 - y_k) log(1 - a_k)] after a softmax:
        a_i (S - y_i) - y_i (1 - a_i) + (1 - y_i) a_i - sum_{k != i} (1 - y_k) a_i a_k / (1 - a_k),
        S = sum_k y_k; each a_i a_k / (1 - a_k) <= 1 is formed from logs (no overflow), in (n, k, k)."""
        log_a, log_1ma = softmax_logs(Z)
        S = Y.sum(axis=1, keepdims=True)
        terms = log_a[:, :, None] + (log_a - log_1ma)[:, None, :]
        k = Z.shape[1]
        terms[:, np.arange(k), np.arange(k)] = -np.inf
        coupled = np.einsum("nik,nk->ni", np.exp(terms), 1.0 - Y)
        return A * (S - Y) - Y * np.exp(log_1ma) + (1.0 - Y) * A - coupled


class CrossEntropy(Loss):
    """Categorical cross-entropy with the natural log, mean over samples:
    L = -1/n sum_i sum_k y_ik log a_ik (targets one-hot, a distribution, or any non-negative rows)."""

    name = "cross_entropy"
    requires_unit_interval = True

    def value(self, A, Y):
        return float(-np.sum(Y * _log_clipped(A)) / len(A))

    def dL_dA(self, A, Y):
        return -Y / np.maximum(A, np.finfo(A.dtype).tiny) * (1.0 / len(A))

    def value_at(self, Z, A, Y, output):
        if output.name == "sigmoid":
            return float(-np.sum(Y * _log_sigmoid(Z)) / len(A))
        if output.name == "softmax":
            return float(-np.sum(Y * log_softmax(Z)) / len(A))
        return self.value(A, Y)

    def value_and_delta(self, Z, A, Y, output):
        if output.name == "sigmoid":  # d/dz -y log sigma(z) = -y sigma(-z)
            return self.value_at(Z, A, Y, output), -Y * output.forward(-Z) * (1.0 / len(A))
        if output.name == "softmax":
            # d/dz_i -sum_k y_k log a_k = a_i S - y_i (S = sum_k y_k: any targets, not only rows summing
            # to 1), written a_i (S - y_i) - y_i (1 - a_i) with 1 - a_i from logs: exact at a_i -> 1
            _, log_1ma = softmax_logs(Z)
            S = Y.sum(axis=1, keepdims=True)
            delta = A * (S - Y) - Y * np.exp(log_1ma)
            return self.value_at(Z, A, Y, output), delta * (1.0 / len(A))
        return super().value_and_delta(Z, A, Y, output)


LOSSES: dict[str, type[Loss]] = {cls.name: cls for cls in (MSE, BCE, CrossEntropy)}


def get_loss(name: str, **params) -> Loss:
    """The loss registered as ``name``, built with its parameters (e.g. mse's ``convention``)."""
    return build("loss", name, LOSSES, **params)

"""Losses, each with its gradient beside it, averaged over samples.

``value(A, Y)`` is the scalar loss and ``dL_dA(A, Y)`` its gradient with respect to
the network output ``A``; both take arrays of shape ``(n_samples, n_outputs)``.
Where an output activation and a loss cancel into a simple delta, ``fused_dL_dZ``
gives ``dL_dZ`` straight from the logits, and ``value_from_logits`` a stable loss
value that never takes the log of 0.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .activations import Activation

__all__ = ["Loss", "LOSSES", "get_loss"]


def _log_clipped(P: np.ndarray) -> np.ndarray:
    # only the general (unfused) path needs this: log(0) would be -inf for a saturated output
    return np.log(np.maximum(P, np.finfo(P.dtype).tiny))


class Loss(ABC):
    name: str
    requires_unit_interval = False  # outputs must lie in (0, 1): probabilities
    fused_with: str | None = None  # the output activation whose delta cancels to (A - Y)/n

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    @abstractmethod
    def value(self, A: np.ndarray, Y: np.ndarray) -> float:
        """The scalar loss of outputs ``A`` against targets ``Y``."""

    @abstractmethod
    def dL_dA(self, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Its gradient with respect to ``A``, shape ``A.shape``."""

    def value_from_logits(self, Z: np.ndarray, A: np.ndarray, Y: np.ndarray) -> float:
        return self.value(A, Y)

    def fused_dL_dZ(self, Z: np.ndarray, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """sigmoid + bce and softmax + cross_entropy: dL/dZ = (A - Y) / n_samples."""
        return (A - Y) * (1.0 / len(A))

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
            raise ValueError(
                f"loss.convention={convention!r} is unknown; valid conventions: {', '.join(self.CONVENTIONS)}"
            )
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


class BCE(Loss):
    """Binary cross-entropy, mean over samples; over the k outputs a mean (``mean``, PyTorch's
    ``BCELoss()``) or a sum (``sum``, Nielsen's cross-entropy cost):
    L = -1/(n k) sum [y log a + (1 - y) log(1 - a)]  or  -1/n sum [...]."""

    name = "bce"
    requires_unit_interval = True
    fused_with = "sigmoid"
    CONVENTIONS = ("mean", "sum")

    def __init__(self, convention: str = "mean") -> None:
        if convention not in self.CONVENTIONS:
            raise ValueError(
                f"loss.convention={convention!r} is unknown for bce; valid conventions: {', '.join(self.CONVENTIONS)}"
            )
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

    def value_from_logits(self, Z, A, Y):
        # -[y log s(z) + (1-y) log(1-s(z))] = softplus(z) - y z = (max(z, 0) - y z) + log1p(e^-|z|);
        # summed in this order, the large terms cancel exactly before the small one is added
        return float(np.sum((np.maximum(Z, 0.0) - Y * Z) + np.log1p(np.exp(-np.abs(Z)))) * self._scale(A))

    def fused_dL_dZ(self, Z, A, Y):  # sigmoid + bce: (a - y) scaled like the loss
        return (A - Y) * self._scale(A)


class CrossEntropy(Loss):
    """Categorical cross-entropy with the natural log, mean over samples:
    L = -1/n sum_i sum_k y_ik log a_ik (targets one-hot or any distribution)."""

    name = "cross_entropy"
    requires_unit_interval = True
    fused_with = "softmax"

    def value(self, A, Y):
        return float(-np.sum(Y * _log_clipped(A)) / len(A))

    def dL_dA(self, A, Y):
        return -Y / np.maximum(A, np.finfo(A.dtype).tiny) * (1.0 / len(A))

    def value_from_logits(self, Z, A, Y):
        # log softmax = z - logsumexp(z), with the max subtracted first
        shifted = Z - Z.max(axis=1, keepdims=True)
        log_A = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-np.sum(Y * log_A) / len(A))

    def fused_dL_dZ(self, Z, A, Y):
        # softmax + ce: (a - y)/n holds when each target row sums to 1 (one-hot or a distribution)
        return (A - Y) * (1.0 / len(A))


LOSSES: dict[str, type[Loss]] = {cls.name: cls for cls in (MSE, BCE, CrossEntropy)}


def get_loss(name: str, **params) -> Loss:
    """The loss registered as ``name``, built with its parameters (e.g. mse's ``convention``)."""
    if name not in LOSSES:
        raise ValueError(f"loss={name!r} is unknown; valid names: {', '.join(sorted(LOSSES))}")
    return LOSSES[name](**params)

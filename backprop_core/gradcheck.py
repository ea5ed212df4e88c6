"""Gradient check: back-propagated gradients against central finite differences in float64."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .losses import Loss
from .network import Network

__all__ = ["gradient_check", "GradCheckResult"]


@dataclass(frozen=True)
class GradCheckResult:
    """Per-layer errors keyed ``W/l01``, ``b/l01``, ...: the relative error
    ``||g_bp - g_fd|| / (||g_bp|| + ||g_fd||)`` and the absolute one ``||g_bp - g_fd||``."""

    errors: dict[str, float]
    abs_errors: dict[str, float]

    @property
    def max_error(self) -> float:
        return max(self.errors.values())

    def max_error_above(self, atol: float = 1e-9) -> float:
        """The largest relative error among the tensors whose absolute error reaches ``atol`` (0 if none):
        where a gradient is exactly 0 (a bias before batch norm), the relative error of round-off is ~1
        and says nothing."""
        return max((e for k, e in self.errors.items() if self.abs_errors[k] >= atol), default=0.0)

    def failures(self, rtol: float = 1e-6, atol: float = 1e-9) -> dict[str, float]:
        """Layers whose relative error reaches ``rtol`` and absolute error ``atol``.

        ``atol`` only matters for gradients that are (nearly) zero, where finite-difference
        round-off (about 1e-16 |L| / h) makes a relative error meaningless, e.g. a shared bias
        before a softmax, whose exact gradient is 0.
        """
        return {k: e for k, e in self.errors.items() if e >= rtol and self.abs_errors[k] >= atol}

    def passed(self, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
        return not self.failures(rtol, atol)


def _errors(analytic: np.ndarray, numeric: np.ndarray) -> tuple[float, float]:
    diff = float(np.linalg.norm(analytic - numeric))
    scale = float(np.linalg.norm(analytic) + np.linalg.norm(numeric))
    return (diff / scale if scale > 0 else 0.0), diff


def gradient_check(net: Network, X: np.ndarray, Y: np.ndarray, loss: Loss, h: float = 1e-5) -> GradCheckResult:
    """Compare every parameter's gradient (frozen ones too) with ``(L(p + h) - L(p - h)) / 2h``.

    Runs on a float64 copy of ``net``, so a float32 network is checked at full precision.
    """
    net64 = net.copy(dtype=np.float64)
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    net64.loss_and_grad(X, Y, loss)
    analytic = net64.grads.copy()
    numeric = np.empty_like(analytic)
    p = net64.params
    for i in range(p.size):
        saved = p[i]
        p[i] = saved + h
        plus = net64.loss(X, Y, loss)
        p[i] = saved - h
        minus = net64.loss(X, Y, loss)
        p[i] = saved
        numeric[i] = (plus - minus) / (2.0 * h)

    errors, abs_errors = {}, {}
    for key, start, size in net.parameter_segments():
        errors[key], abs_errors[key] = _errors(analytic[start:start + size], numeric[start:start + size])
    return GradCheckResult(errors, abs_errors)

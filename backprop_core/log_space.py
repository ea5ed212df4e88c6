"""Softmax's logarithms, exact in saturation: what the softmax activation's backward pass and the
losses on a softmax output read instead of ``log(a)`` (which rounds to ``log(1) = 0`` or ``-inf``)."""

from __future__ import annotations

import numpy as np

__all__ = ["log_softmax", "softmax_logs"]


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

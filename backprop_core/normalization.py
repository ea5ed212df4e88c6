"""Batch and layer normalization of one layer's ``(n, width)`` values, forward and backward side by side.

``x_hat = (z - mean) / sqrt(var + eps)`` with the mean and the (biased) variance taken over the batch
(``batch``: each unit over the samples) or over the units (``layer``: each sample over its units), then
``gamma * x_hat + beta`` when affine.  The backward pass, from ``g = dL/dx_hat``::

    dL/dz = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps)

with the means over the same axis as the statistics (the two terms are the gradient through the mean
and through the variance).  Batch normalization evaluates with running statistics, updated after each
training step as PyTorch does: ``running = (1 - momentum) * running + momentum * batch``, the variance's
batch estimate unbiased (``n / (n - 1)``).  Layer normalization is the same in training and evaluation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["NORMS", "NormStats", "normalize", "normalize_backward"]

NORMS = ("none", "batch", "layer")
AXIS = {"batch": 0, "layer": 1}  # the axis a norm's statistics are taken over


class NormStats(NamedTuple):
    """What a normalization's backward pass and the running statistics need from its forward pass."""

    x_hat: np.ndarray
    inv_std: np.ndarray  # 1 / sqrt(var + eps), shaped to broadcast over the layer's values
    mean: np.ndarray
    var: np.ndarray  # biased, as used in the forward pass


def normalize(z: np.ndarray, kind: str, eps: float, *, in_place: bool = False) -> NormStats:
    """``z`` normalized over the axis of ``kind`` (``batch`` or ``layer``), with its statistics
    (``in_place``: ``z`` becomes x_hat, saving a copy where z is not needed again)."""
    axis, n = AXIS[kind], z.shape[AXIS[kind]]
    mean = np.add.reduce(z, axis=axis, keepdims=True)
    mean /= n
    centred = np.subtract(z, mean, out=z if in_place else None)
    var = np.einsum(_SUM_OF_PRODUCTS[axis], centred, centred).reshape(mean.shape)
    var /= n
    inv_std = np.sqrt(var + eps)
    np.divide(1.0, inv_std, out=inv_std)
    centred *= inv_std
    return NormStats(centred, inv_std, mean, var)


_SUM_OF_PRODUCTS = {0: "ij,ij->j", 1: "ij,ij->i"}  # sum over the batch (per unit), over the units (per sample)


def normalize_backward(g: np.ndarray, stats: NormStats, kind: str, gamma: np.ndarray | None = None,
                       dgamma: np.ndarray | None = None, dbeta: np.ndarray | None = None) -> np.ndarray:
    """``dL/dz`` (a new array) from ``g``: dL/dx_hat, or, given ``gamma``, dL/d(gamma x_hat + beta), when
    ``dgamma`` and ``dbeta`` (per unit) are filled too.  With batch statistics the two means the formula
    needs are ``gamma dbeta / n`` and ``gamma dgamma / n``: no pass over the batch of their own."""
    x_hat, axis, inv_std = stats.x_hat, AXIS[kind], stats.inv_std
    n = g.shape[axis]
    if gamma is not None:
        np.einsum("ij,ij->j", g, x_hat, out=dgamma)
        np.add.reduce(g, axis=0, out=dbeta)
    if kind == "batch":  # everything per unit: fold gamma and 1/sd into three vectors
        g_sum = dbeta if gamma is not None else g.sum(axis=0)
        gx_sum = dgamma if gamma is not None else np.einsum("ij,ij->j", g, x_hat)
        scale = inv_std * gamma if gamma is not None else inv_std
        dz = np.multiply(g, scale)
        dz -= scale * (g_sum / n)
        dz -= x_hat * (scale * (gx_sum / n))
        return dz
    gg = g * gamma if gamma is not None else g.copy()  # per sample: the means are over its units
    through_mean = gg.sum(axis=1, keepdims=True) / n
    through_var = np.einsum("ij,ij->i", gg, x_hat)[:, None] / n
    gg -= through_mean
    gg -= x_hat * through_var
    gg *= inv_std
    return gg

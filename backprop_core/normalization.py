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


def normalize(z: np.ndarray, kind: str, eps: float) -> NormStats:
    """``z`` normalized over the axis of ``kind`` (``batch`` or ``layer``), with its statistics."""
    axis = AXIS[kind]
    mean = z.mean(axis=axis, keepdims=True)
    centred = z - mean
    var = np.mean(np.square(centred), axis=axis, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    centred *= inv_std
    return NormStats(centred, inv_std, mean, var)


def normalize_backward(g: np.ndarray, stats: NormStats, kind: str) -> np.ndarray:
    """``dL/dz`` from ``g = dL/dx_hat`` (a new array; ``g`` is left as it is)."""
    axis, x_hat = AXIS[kind], stats.x_hat
    through_var = np.mean(g * x_hat, axis=axis, keepdims=True)
    dz = g - g.mean(axis=axis, keepdims=True)
    dz -= x_hat * through_var
    dz *= stats.inv_std
    return dz

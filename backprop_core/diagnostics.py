"""Per-layer diagnostics from the forward and backward pass just made (no second pass).

Every function returns arrays of length L (one entry per weight layer, input side
first).
"""

from __future__ import annotations

import numpy as np

from .network import Network

__all__ = ["layer_diagnostics", "layer_key", "DIAGNOSTICS"]

DIAGNOSTICS = (
    "grad_norm",  # ||dL/dW||_F
    "bias_grad_norm",  # ||dL/dZ summed over the batch|| = ||dL/db||: Nielsen's "speed of learning"
    "weight_norm",  # ||W||_F
    "update_ratio",  # ||update of W|| / ||W||  (Karpathy: about 1e-3 is healthy)
    "act_mean",  # mean of A over batch and units
    "act_std",  # std of A over batch and units
    "saturation",  # fraction of A where the activation's derivative is nearly 0
    "dead_fraction",  # fraction of units saturated on every sample of the batch (dead ReLUs)
)


def layer_key(name: str, k: int, n_layers: int, letter: str = "l") -> str:
    """``grad_norm/l01``: layer ``k`` (1-based from the input), zero-padded to at least 2 digits
    (``letter="u"`` numbers units instead: ``output/u01``)."""
    return f"{name}/{letter}{k:0{max(2, len(str(n_layers)))}d}"


def _norms(arrays: list[np.ndarray]) -> np.ndarray:
    # one BLAS dot per layer: faster than squaring the flat vector and reduceat-summing it
    return np.sqrt(np.array([np.vdot(a, a) for a in arrays], dtype=np.float64))


def layer_diagnostics(net: Network, updates: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Diagnostics of the last ``loss_and_grad`` pass, each an array of shape ``(L,)``.

    ``updates`` (the flat update about to be applied to ``net.trainable``) adds ``update_ratio``.
    """
    weight_norm = _norms(net.weights)
    out = {
        "grad_norm": _norms(net.dL_dW),
        "bias_grad_norm": _norms(net.unit_errors),
        "weight_norm": weight_norm,
    }
    if updates is not None:
        update_norm = _norms([updates[start:start + W.size] for start, W in zip(net.weight_offsets, net.weights)])
        out["update_ratio"] = np.divide(
            update_norm, weight_norm, out=np.full_like(update_norm, np.nan), where=weight_norm > 0
        )
    out |= _activation_stats(net)
    return out


def _activation_stats(net: Network) -> dict[str, np.ndarray]:
    """Mean, std, saturation and dead fraction of every layer's activations (a few passes each)."""
    L = net.n_layers
    stats = {name: np.empty(L) for name in ("act_mean", "act_std", "saturation", "dead_fraction")}
    for k, (activation, Z, A) in enumerate(zip(net.activations, net.cache["Z"], net.cache["A"])):
        n = A.size
        mean = float(A.sum(dtype=np.float64)) / n
        if A.dtype == np.float64:  # E[a^2] - E[a]^2 by one BLAS dot: exact enough in float64
            var = max(float(np.vdot(A, A)) / n - mean * mean, 0.0)
        else:  # float32 would cancel badly: centre first
            centered = A - A.dtype.type(mean)
            var = float(np.vdot(centered, centered)) / n
        mask = activation.saturated(Z, A)
        stats["act_mean"][k] = mean
        stats["act_std"][k] = np.sqrt(var)
        stats["saturation"][k] = np.count_nonzero(mask) / n
        stats["dead_fraction"][k] = np.count_nonzero(mask.all(axis=0)) / mask.shape[1]
    return stats

"""Per-layer diagnostics from the forward and backward pass just made (no second pass).

Every function returns arrays of length L (one entry per weight layer, input side
first).
"""

from __future__ import annotations

import numpy as np

from .network import Network

__all__ = ["layer_diagnostics", "layer_key", "layer_leaf", "diagnostic_keys", "sum_of_squares", "DIAGNOSTICS"]

DIAGNOSTICS = (
    "grad_norm",  # ||dL/dW||_F
    "delta_norm",  # ||dL/dZ summed over the batch||: Nielsen's "speed of learning", for every bias option
    "bias_grad_norm",  # ||dL/db||, only where the layer has a bias (per unit: = delta_norm; shared: |sum|)
    "weight_norm",  # ||W||_F
    "update_ratio",  # ||update of W|| / ||W||  (Karpathy: about 1e-3 is healthy)
    "act_mean",  # mean of A over batch and units
    "act_std",  # std of A over batch and units (centred: exact for a constant layer)
    "saturation",  # fraction of entries where |f'(z)| < SATURATION_EPS * max |f'| (one rule for all)
    "dead_fraction",  # fraction of units saturated on every sample (only where f' is 0 on a region: ReLU)
)


def layer_key(name: str, k: int, n_layers: int, letter: str = "l") -> str:
    """``grad_norm/grad_norm_l01``: layer ``k`` (1-based from the input), zero-padded to at least 2
    digits (``letter="u"`` numbers units instead: ``output/output_u01``).  The section before the ``/``
    groups a quantity's charts in MLflow; the leaf repeats the quantity, because a chart card shows only
    the leaf and ``l07`` alone would not say what it is."""
    return f"{name}/{name}_{layer_leaf(k, n_layers, letter)}"


def layer_leaf(k: int, n_layers: int, letter: str = "l") -> str:
    """``l01``: layer ``k`` of ``n_layers``, zero-padded to at least 2 digits."""
    return f"{letter}{k:0{max(2, len(str(n_layers)))}d}"


def diagnostic_keys(net: Network) -> dict[str, list[tuple[int, str]]]:
    """For each diagnostic, the ``(layer index, key)`` pairs where it is defined: ``bias_grad_norm``
    only with biases, ``dead_fraction`` only after an activation whose derivative is 0 on a region."""
    def defined(name: str, k: int) -> bool:
        if name == "bias_grad_norm":
            return net.bias_mode != "none"
        if name == "dead_fraction":
            return net.activations[k].has_dead_region
        return True

    return {name: [(k, layer_key(name, k + 1, net.n_layers)) for k in range(net.n_layers) if defined(name, k)]
            for name in DIAGNOSTICS}


def sum_of_squares(a: np.ndarray) -> float:
    """sum a^2 by one BLAS dot, accumulated in float64 (float32 squares overflow from 1.8e19 on)."""
    if a.dtype != np.float64:
        a = a.astype(np.float64)
    return float(np.vdot(a, a))


def _norms(arrays: list[np.ndarray]) -> np.ndarray:
    # one BLAS dot per layer: faster than squaring the flat vector and reduceat-summing it
    return np.sqrt(np.array([sum_of_squares(a) for a in arrays]))


def layer_diagnostics(net: Network, updates: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Diagnostics of the last ``loss_and_grad`` pass, each an array of shape ``(L,)`` (NaN where
    ``diagnostic_keys`` says a layer has none).

    ``updates`` (the flat update about to be applied to ``net.trainable``) adds ``update_ratio``.
    """
    weight_norm = _norms(net.weights)
    out = {"grad_norm": _norms(net.dL_dW), "delta_norm": _norms(net.unit_errors),
           "bias_grad_norm": _norms(net.dL_db) if net.bias_mode != "none" else np.full(net.n_layers, np.nan),
           "weight_norm": weight_norm}
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
        # two passes, centred: E[a^2] - E[a]^2 cancels (a constant layer would read 1e-9, not 0)
        centered = A - A.dtype.type(mean)
        stats["act_mean"][k] = mean
        stats["act_std"][k] = np.sqrt(sum_of_squares(centered) / n)
        mask = activation.saturated(Z, A)
        stats["saturation"][k] = np.count_nonzero(mask) / n
        stats["dead_fraction"][k] = (np.count_nonzero(mask.all(axis=0)) / mask.shape[1]
                                     if activation.has_dead_region else np.nan)
    return stats

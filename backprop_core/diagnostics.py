"""Per-layer diagnostics from the forward and backward pass just made (no second pass).

Every function returns arrays of length L (one entry per weight layer, input side
first).  Norms over the flat parameter vector are a single ``np.add.reduceat``.
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


def layer_key(name: str, k: int, n_layers: int) -> str:
    """``grad_norm/l01``: layer ``k`` (1-based from the input), zero-padded to at least 2 digits."""
    return f"{name}/l{k:0{max(2, len(str(n_layers)))}d}"


def _segment_norms(flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return np.sqrt(np.add.reduceat(flat * flat, offsets))


def layer_diagnostics(net: Network, updates: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Diagnostics of the last ``loss_and_grad`` pass, each an array of shape ``(L,)``.

    ``updates`` (the flat update about to be applied to ``net.trainable``) adds ``update_ratio``.
    """
    weights = net.params[: net.n_weights]
    weight_norm = _segment_norms(weights, net.weight_offsets)
    out = {
        "grad_norm": _segment_norms(net.grads[: net.n_weights], net.weight_offsets),
        "bias_grad_norm": _segment_norms(net.unit_errors_flat, net.unit_offsets),
        "weight_norm": weight_norm,
    }
    if updates is not None:
        update_norm = _segment_norms(updates[: net.n_weights], net.weight_offsets)
        out["update_ratio"] = np.divide(
            update_norm, weight_norm, out=np.full_like(update_norm, np.nan), where=weight_norm > 0
        )
    L = net.n_layers
    act_mean, act_std, saturation, dead = (np.empty(L) for _ in range(4))
    for k, (activation, Z, A) in enumerate(zip(net.activations, net.cache["Z"], net.cache["A"])):
        act_mean[k] = A.mean()
        act_std[k] = A.std()
        mask = activation.saturated(Z, A)
        saturation[k] = mask.mean()
        dead[k] = mask.all(axis=0).mean()
    out |= {"act_mean": act_mean, "act_std": act_std, "saturation": saturation, "dead_fraction": dead}
    return out

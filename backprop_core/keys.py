"""The names of per-layer quantities: ``grad_norm/grad_norm_l01``."""

from __future__ import annotations

__all__ = ["layer_key", "layer_leaf"]


def layer_key(name: str, k: int, n_layers: int, letter: str = "l") -> str:
    """``grad_norm/grad_norm_l01``: layer ``k`` (1-based from the input), zero-padded to at least 2
    digits (``letter="u"`` numbers units instead: ``output/output_u01``).  The section before the ``/``
    groups a quantity's charts in MLflow; the leaf repeats the quantity, because a chart card shows only
    the leaf and ``l07`` alone would not say what it is."""
    return f"{name}/{name}_{layer_leaf(k, n_layers, letter)}"


def layer_leaf(k: int, n_layers: int, letter: str = "l") -> str:
    """``l01``: layer ``k`` of ``n_layers``, zero-padded to at least 2 digits."""
    return f"{letter}{k:0{max(2, len(str(n_layers)))}d}"

"""Distributions of every layer's weight gradients, weights and activations: what TensorBoard's
histograms show, for any tracker.

The bins are fixed once for every quantity, layer and step, so histograms add, compare and stack
into bands without re-binning: signed, log-spaced at four bins a decade from 1e-12 to 1e4 (a
vanishing gradient of 1e-9 and a weight of 0.3 land in bins of the same relative width), one bin
``[-1e-12, 1e-12)`` around zero, and one open bin at each end.  Non-finite entries (a diverging
run) are counted apart, so the counts plus ``nonfinite`` always sum to the number of entries.
"""

from __future__ import annotations

import math

import numpy as np

from .diagnostics import layer_key
from .network import Network
from .training import Callback

__all__ = ["EDGES", "QUANTITIES", "NEAR_ZERO", "GRAD_QUANTILES", "histogram", "magnitude_histogram",
           "quantile_from_histogram", "DistributionRecorder"]

MAGNITUDES = 10.0 ** (np.arange(-48, 17) / 4)  # 1e-12 ... 1e4, a quarter decade apart (65 values)
EDGES = np.concatenate([[-np.inf], -MAGNITUDES[::-1], MAGNITUDES, [np.inf]])  # 132 edges: 131 bins
QUANTITIES = ("grad", "weight", "act")  # dL/dW, W, the layer's activations A
NEAR_ZERO = 1e-6  # |dL/dW| up to this share of the net's largest |dL/dW| counts as near zero
GRAD_QUANTILES = (5, 50, 95)  # percentiles of |dL/dW| logged as metrics, per layer


def histogram(a: np.ndarray) -> tuple[np.ndarray, int]:
    """``(counts over EDGES' bins, number of non-finite entries)`` of ``a``'s entries."""
    a = np.asarray(a).ravel()
    finite = np.isfinite(a)
    values = a if finite.all() else a[finite]
    index = np.searchsorted(EDGES[1:-1], values, side="right")  # bin i holds EDGES[i] <= x < EDGES[i+1]
    return np.bincount(index, minlength=len(EDGES) - 1), int(a.size - values.size)


def magnitude_histogram(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, edges)`` of |x| from the signed ``counts`` (last axis = EDGES' bins): the zero
    bin becomes ``[0, 1e-12)`` and each negative bin is added to its positive mirror."""
    zero = len(MAGNITUDES)  # the bin [-1e-12, 1e-12)
    folded = np.concatenate([counts[..., zero:zero + 1], counts[..., zero + 1:] + counts[..., zero - 1::-1]], axis=-1)
    return folded, np.concatenate([[0.0], EDGES[zero + 1:]])


def quantile_from_histogram(counts: np.ndarray, q: float, edges: np.ndarray = EDGES) -> float:
    """The ``q``-quantile (0..1) read off ``counts`` over ``edges``: linear within the bin, in log
    space for the log-spaced bins (the open end bins read as their finite edge; empty counts give NaN)."""
    total = counts.sum()
    if total == 0:
        return math.nan
    cumulative = np.cumsum(counts)
    i = int(np.searchsorted(cumulative, q * total, side="left"))
    i = min(i, len(counts) - 1)
    low, high = edges[i], edges[i + 1]
    if not np.isfinite(low):
        return float(high)
    if not np.isfinite(high):
        return float(low)
    before = cumulative[i] - counts[i]
    share = (q * total - before) / counts[i] if counts[i] else 0.5
    if low * high > 0:  # same sign: interpolate the magnitude geometrically
        return float(np.sign(low) * math.exp(math.log(abs(low)) + share * (math.log(abs(high)) - math.log(abs(low)))))
    return float(low + share * (high - low))


class DistributionRecorder(Callback):
    """Histograms of dL/dW, W and A for every layer at every ``every``-th logged record, at the
    closing record and at a non-finite one, taken from the pass that made the record (before its
    update).  Each snapshot also adds to the record, per layer: percentiles ``GRAD_QUANTILES`` of
    |dL/dW| (``grad_abs_p50/grad_abs_p50_l01``, exact, not read off the bins) and the share of near-zero
    entries (``grad_near_zero/grad_near_zero_l01``: |dL/dW| <= ``NEAR_ZERO`` x the net's largest).
    Place it first among the callbacks, so the others see these keys.

    ``arrays()`` gives ``steps (T,)``, ``edges``, and for each quantity counts ``(T, L, bins)`` and
    ``<quantity>_nonfinite (T, L)``: what ``np.savez_compressed`` stores in a few kB per snapshot.
    """

    def __init__(self, every: int = 10) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every={every!r} must be an integer >= 1")
        self.every = every
        self.net: Network | None = None
        self.total = 0
        self.seen = 0
        self.steps: list[int] = []
        self.counts: dict[str, list[np.ndarray]] = {q: [] for q in QUANTITIES}
        self.nonfinite: dict[str, list[np.ndarray]] = {q: [] for q in QUANTITIES}

    def on_fit_start(self, net: Network, total_steps: int) -> None:
        self.net, self.total, self.seen = net, total_steps, 0

    def on_step(self, record: dict[str, float]) -> None:
        step = int(record["step"])
        due = self.seen % self.every == 0 or step >= self.total or not math.isfinite(record["train/loss"])
        self.seen += 1
        if due:
            record.update(self.snapshot(step))

    def snapshot(self, step: int) -> dict[str, float]:
        """Histogram the net's current pass; return the per-layer gradient metrics."""
        net = self.net
        layers = {"grad": net.dL_dW, "weight": net.weights, "act": net.cache["A"]}
        for quantity, arrays in layers.items():
            pairs = [histogram(a) for a in arrays]
            self.counts[quantity].append(np.array([c for c, _ in pairs]))
            self.nonfinite[quantity].append(np.array([n for _, n in pairs]))
        self.steps.append(step)
        magnitudes = [np.abs(g) for g in net.dL_dW]
        largest = max((float(m.max()) for m in magnitudes if m.size), default=0.0)
        metrics = {}
        for k, m in enumerate(magnitudes, start=1):
            for p, value in zip(GRAD_QUANTILES, np.percentile(m, GRAD_QUANTILES)):
                metrics[layer_key(f"grad_abs_p{p:02d}", k, net.n_layers)] = float(value)
            metrics[layer_key("grad_near_zero", k, net.n_layers)] = (
                float(np.count_nonzero(m <= NEAR_ZERO * largest)) / m.size if math.isfinite(largest) else math.nan)
        return metrics

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"steps": np.array(self.steps, dtype=np.int64), "edges": EDGES}
        for quantity in QUANTITIES:
            out[quantity] = np.array(self.counts[quantity], dtype=np.int64)
            out[f"{quantity}_nonfinite"] = np.array(self.nonfinite[quantity], dtype=np.int64)
        return out

    def save(self, path) -> None:
        np.savez_compressed(path, **self.arrays())

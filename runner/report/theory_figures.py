"""The report's theory figures: the phase diagram of trainability with the predicted 6 xi_c curve,
Jacobian spectra, predicted against measured gradient slopes, and the length map per layer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from backprop_core import theory

from .small_multiples import curve, small_multiples
from ..figures.style import plt, save_figure
from ..tracking.schema import SLOPE_TOLERANCE
from .tables import as_text

TRAINABLE_DEPTHS = 6  # Schoenholz et al.: nets train up to about 6 xi_c layers
FLOOR = 1e-30  # s^2 below this is drawn at it (the spectra's density axis starts there)


def _constant(runs: pd.DataFrame, column: str):
    """The one value ``column`` has across the runs, or None."""
    if column not in runs:
        return None
    values = as_text(runs[column]).unique()
    return values[0] if len(values) == 1 else None


def correlation_depth(activation: str, sigma_w2: float, sigma_b2: float) -> float:
    """xi_c = -1 / ln chi_c at the correlation map's fixed point (= -1 / ln chi1 in the ordered phase)."""
    q = theory.q_star(activation, sigma_w2, sigma_b2)
    if not math.isfinite(q):
        return math.nan
    c = theory.c_star(activation, sigma_w2, sigma_b2, q)
    return theory.depth_scale(theory.chi_c(activation, sigma_w2, sigma_b2, q, c))


def plot_phase_diagram(runs: pd.DataFrame, path: Path, metric: str = "final/val_accuracy") -> Path | None:
    """``metric`` over (sigma_w2, depth) for a sweep of ``init.sigma_w2`` x ``architecture.depth`` of
    one activation and sigma_b2, with the predicted 6 xi_c curve and the critical sigma_w2; None for
    other sweeps."""
    needed = ("params.init.sigma_w2", "params.architecture.depth", f"metrics.{metric}")
    activation, sigma_b2 = _constant(runs, "params.activation"), _constant(runs, "params.init.sigma_b2")
    if any(c not in runs for c in needed) or activation is None or sigma_b2 is None:
        return None
    grid = runs.pivot_table(index="params.architecture.depth", columns="params.init.sigma_w2",
                            values=f"metrics.{metric}", aggfunc="mean")
    grid.index, grid.columns = grid.index.astype(float), grid.columns.astype(float)
    grid = grid.sort_index().sort_index(axis=1)
    sigma_b2 = float(sigma_b2)
    x, y = grid.columns.to_numpy(), grid.index.to_numpy()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    mesh = ax.pcolormesh(_edges(x), _edges(y), grid.to_numpy(), cmap="viridis", shading="flat",
                         vmin=0, vmax=1 if "accuracy" in metric else None)
    fig.colorbar(mesh, ax=ax, label=metric)
    fine = np.geomspace(x.min(), x.max(), 40)
    xi = np.array([correlation_depth(activation, w, sigma_b2) for w in fine])
    ax.plot(fine, TRAINABLE_DEPTHS * xi, color="white", linewidth=2, label=f"{TRAINABLE_DEPTHS} $\\xi_c$ (theory)")
    try:
        critical = theory.critical_sigma_w2(activation, sigma_b2)
        ax.axvline(critical, color="white", linestyle=":", label=f"critical $\\sigma_w^2$ = {critical:.3g}")
    except ValueError:
        pass
    ax.set(xscale="log", yscale="log", xlabel="$\\sigma_w^2$", ylabel="depth (hidden layers)",
           ylim=(_edges(y)[0], _edges(y)[-1]), xlim=(_edges(x)[0], _edges(x)[-1]),
           title=f"{activation}, $\\sigma_b^2$ = {sigma_b2:g}: {metric} after the training budget")
    ax.set_xticks(x, [f"{v:g}" for v in x], fontsize="small", rotation=45)
    ax.set_yticks(y, [f"{v:g}" for v in y])
    ax.minorticks_off()
    ax.legend(loc="upper right", fontsize="small", facecolor="0.3", labelcolor="white")
    fig.tight_layout()
    return save_figure(fig, path, margins=False)


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges half-way between sorted centres, in log space (both axes are logarithmic)."""
    v = np.log(centres)
    step = np.diff(v)
    inner = v[:-1] + step / 2
    outer = step[[0, -1]] / 2 if len(v) > 1 else np.array([0.5, 0.5])
    return np.exp(np.concatenate([[v[0] - outer[0]], inner, [v[-1] + outer[1]]]))


def plot_spectra(runs: pd.DataFrame, spectra: dict, swept: list[str], path: Path) -> Path:
    """The density of log10 s^2 (s: the input-output Jacobian's singular values at initialization), one
    line per run, panels per swept group choice; s^2 below ``FLOOR`` is counted at it."""
    def log_s2(values) -> np.ndarray:  # an exactly zero s (a dead ReLU unit) sits at the axis' floor
        return np.log10(np.maximum(np.square(np.asarray(values, dtype=float).ravel()), FLOOR))

    every = np.concatenate([log_s2(v) for v in spectra.values()])
    bins = np.linspace(every.min(), max(every.max(), 1.0), 61)

    def draw(ax, items, colour, label):
        density, edges = np.histogram(np.concatenate([log_s2(v) for v in items]), bins=bins, density=True)
        ax.stairs(density, edges, color=colour, label=label)
        ax.axvline(0.0, color="0.6", linewidth=0.8, linestyle=":")

    return small_multiples(runs, spectra, swept, path, draw, "log10 $s^2$ (dotted: isometry, s = 1)", "density",
                           yscale="linear")


def plot_slopes(runs: pd.DataFrame, path: Path) -> Path | None:
    """Measured against predicted per-layer slope of ln ||dL/dW||^2 at step 0, one point per run,
    with the agreement band; None when the runs have no theory metrics."""
    x_key, y_key = "metrics.theory/grad_log_slope", "metrics.measured/grad_log_slope"
    if x_key not in runs or y_key not in runs:
        return None
    x, y = runs[x_key].astype(float).to_numpy(), runs[y_key].astype(float).to_numpy()
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        return None
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    low, high = min(x[keep].min(), y[keep].min()), max(x[keep].max(), y[keep].max())
    pad = 0.1 * (high - low or 1)
    line = np.linspace(low - pad, high + pad, 50)
    absolute, relative = SLOPE_TOLERANCE
    ax.fill_between(line, line - absolute - relative * abs(line), line + absolute + relative * abs(line),
                    color="0.9", label="agreement band (theory_agrees)")
    ax.plot(line, line, color="0.5", linewidth=0.8)
    depth = runs.get("params.architecture.depth")
    depths = pd.to_numeric(depth, errors="coerce").to_numpy()[keep] if depth is not None else np.array([np.nan])
    varies = np.isfinite(depths).all() and len(np.unique(depths)) > 1  # a colour bar of one value reads nothing
    if varies:
        fig.colorbar(ax.scatter(x[keep], y[keep], c=depths, cmap="viridis", s=18), ax=ax, label="depth")
    else:
        ax.scatter(x[keep], y[keep], s=18)
    one_depth = f", depth {depths[0]:g}" if not varies and np.isfinite(depths).all() else ""
    ax.set(xlabel="predicted slope of ln ||dL/dW_l||² per layer (towards the input)", ylabel="measured at step 0",
           title=f"gradient slope: prediction vs measurement\n({_runs(int(keep.sum()))}{one_depth})")
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return save_figure(fig, path, margins=False)


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def plot_lengths(runs: pd.DataFrame, tables: dict, swept: list[str], path: Path) -> Path:
    """The length q^l per layer at initialization: measured (solid) against the length map (dashed)."""
    def draw(ax, items, colour, label):
        layers = items[0]["layer"].to_numpy()
        curve(ax, layers, [t["q_measured"].to_numpy(float) for t in items], colour, label, marker=".")
        curve(ax, layers, [t["q_theory"].to_numpy(float) for t in items], colour, linestyle="--")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    return small_multiples(runs, tables, swept, path, draw, "layer (1 = input side)",
                           "q = mean Z² (solid: measured, dashed: theory)", missing="no length map for this net")

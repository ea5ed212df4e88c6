"""Theory beside measurement, per run: the mean-field prediction for the run's architecture,
activation and initialization (``backprop_core.theory``) next to what its step-0 record measured.

sigma_w2 = fan_in Var(W) of each layer, from the initializer's distribution (not the sample);
sigma_b2 = Var(b) (0 for zero or absent biases).  A run whose initializer has no variance
(zeros, constant, explicit values) gets no prediction.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backprop_core import layer_key, theory

from ..tracking.schema import agrees, gradient_flow
from .build import BuiltRun

@dataclass(frozen=True)
class RunTheory:
    prediction: theory.Prediction
    q_measured: np.ndarray  # mean Z_l^2 over the training set at the initial weights


def run_theory(exp: BuiltRun) -> RunTheory | None:
    """The prediction for ``exp`` at its initial weights, or None where the theory has nothing to say:
    no variance, no hidden layer, or a backward pass that is not backpropagation."""
    net = exp.net
    if exp.weight_variance is None or exp.bias_variance is None or net.n_layers < 2 or \
            net.hidden_derivative != "exact":
        return None
    sigma_w2s = [fan_in * exp.weight_variance(fan_in, fan_out) for fan_in, fan_out in net.weight_shapes]
    if min(sigma_w2s) <= 0:
        return None
    q_input = float(np.mean(np.square(exp.data.X_train, dtype=np.float64)))
    prediction = theory.predict(net.hidden_activation, net.sizes, sigma_w2s, exp.bias_variance, q_input)
    return RunTheory(prediction, theory.layer_lengths(net, exp.data.X_train))


def _measured_profile(first: dict[str, float], n_layers: int) -> np.ndarray:
    """The step-0 record's ||dL/dW_l|| per layer (NaN without diagnostics)."""
    return np.array([first.get(layer_key("grad_norm", k, n_layers), math.nan) for k in range(1, n_layers + 1)])


def compare(run: RunTheory, first: dict[str, float], n_layers: int) -> tuple[dict, dict, dict]:
    """``(summary metrics, profiles, tags)`` from the prediction and the step-0 record ``first``."""
    p = run.prediction
    measured = _measured_profile(first, n_layers)
    measured_slope = theory.hidden_log_slope(measured ** 2)
    metrics = {"theory/sigma_w2": p.sigma_w2, "theory/sigma_b2": p.sigma_b2, "theory/q_star": p.q_star,
               "theory/chi1": p.chi1, "theory/ln_chi1": math.log(p.chi1) if p.chi1 > 0 else -math.inf,
               "theory/xi_grad": p.xi_grad, "theory/grad_log_slope": p.log_slope,
               "measured/grad_log_slope": measured_slope, "theory/slope_error": measured_slope - p.log_slope}
    tags = {"regime": p.regime}
    if math.isfinite(measured_slope):
        tags["gradient_flow"] = gradient_flow(measured_slope, n_layers)
        if math.isfinite(p.log_slope):
            tags["theory_agrees"] = "yes" if agrees(measured_slope, p.log_slope) else "no"
    profiles = {"profile/q_theory": list(p.lengths), "profile/q_init": list(run.q_measured)}
    if math.isfinite(measured[-1]):  # the anchor: without diagnostics at step 0 there is none
        profiles["profile/grad_norm_theory"] = list(p.profile * measured[-1])
        profiles["profile/log10_grad_norm_theory"] = [math.log10(v) if v > 0 else math.nan
                                                      for v in profiles["profile/grad_norm_theory"]]
    return metrics, profiles, tags


def write_table(run: RunTheory, first: dict[str, float], n_layers: int, path: Path) -> Path:
    """``theory.csv``: per layer, the predicted and measured length q and gradient norm at step 0."""
    measured = _measured_profile(first, n_layers)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["layer", "q_theory", "q_measured", "grad_norm_theory", "grad_norm_measured"])
        for k in range(n_layers):
            writer.writerow([k + 1, repr(float(run.prediction.lengths[k])), repr(float(run.q_measured[k])),
                             repr(float(run.prediction.profile[k] * measured[-1])), repr(float(measured[k]))])
    return path

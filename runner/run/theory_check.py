"""Theory beside measurement, per run: the mean-field prediction for the run's architecture,
activation and initialization (``backprop_core.theory``; ``block_theory`` for normalized plain nets and
pre-activation residual nets without batch norm) next to what its step-0 record measured.

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

from backprop_core import BlockNetwork, block_theory, layer_key, theory

from ..tracking.schema import agrees, gradient_flow
from .build import BuiltRun

@dataclass(frozen=True)
class RunTheory:
    prediction: theory.Prediction
    q_measured: np.ndarray  # mean of each layer's activation input squared over the training set, initially
    anchor: int = -1  # the layer whose measured gradient norm scales the predicted profile
    streams: np.ndarray | None = None  # a residual net's predicted E[h^2] after each block


def run_theory(exp: BuiltRun) -> RunTheory | None:
    """The prediction for ``exp`` at its initial weights, or None where the theory has nothing to say:
    no variance, no hidden layer, a backward pass that is not backpropagation, or blocks it does not cover
    (post-activation residual blocks, batch norm in a residual net)."""
    net = exp.net
    if exp.weight_variance is None or exp.bias_variance is None or net.n_layers < 2 or \
            net.hidden_derivative != "exact":
        return None
    sigma_w2s = [fan_in * exp.weight_variance(fan_in, fan_out) for fan_in, fan_out in net.weight_shapes]
    if min(sigma_w2s) <= 0:
        return None
    X = exp.data.X_train
    if isinstance(net, BlockNetwork):
        return _block_theory(net, sigma_w2s, exp.bias_variance, X)
    q_input = float(np.mean(np.square(X, dtype=np.float64)))
    prediction = theory.predict(net.hidden_activation, net.sizes, sigma_w2s, exp.bias_variance, q_input)
    return RunTheory(prediction, theory.layer_lengths(net, X))


def _block_theory(net: BlockNetwork, sigma_w2s: list[float], sigma_b2: float, X: np.ndarray) -> RunTheory | None:
    measured = theory.layer_lengths(net, X)
    if not net.residual:  # the output layer's gradient is not centred over the batch: anchored on the last hidden
        prediction = block_theory.normalized_prediction(net.hidden_activation, net.norm, net.sizes, sigma_w2s,
                                                        sigma_b2, X)
        return RunTheory(prediction, measured, anchor=-2 if net.norm == "batch" else -1)
    if net.order != "pre" or net.norm == "batch" or net.alpha_value == 0:
        return None  # not covered; at alpha = 0 (ReZero's start) every branch is off: no profile to predict
    prediction, streams = block_theory.residual_prediction(
        net.hidden_activation, net.norm, net.sizes, sigma_w2s, sigma_b2, X, alpha=net.alpha_value,
        layers_per_block=net.layers_per_block)
    return RunTheory(prediction, measured, streams=streams)


def _measured_profile(first: dict[str, float], n_layers: int) -> np.ndarray:
    """The step-0 record's ||dL/dW_l|| per layer (NaN without diagnostics)."""
    return np.array([first.get(layer_key("grad_norm", k, n_layers), math.nan) for k in range(1, n_layers + 1)])


def measured_flow(first: dict[str, float], n_layers: int) -> tuple[dict[str, float], dict[str, str]]:
    """``measured/grad_log_slope`` and the ``gradient_flow`` tag (vanishing, stable or exploding) of the
    step-0 record; both empty without its per-layer gradient norms."""
    return _flow(theory.hidden_log_slope(_measured_profile(first, n_layers) ** 2), n_layers)


def _flow(slope: float, n_layers: int) -> tuple[dict[str, float], dict[str, str]]:
    if not math.isfinite(slope):
        return {}, {}
    return {"measured/grad_log_slope": slope}, {"gradient_flow": gradient_flow(slope, n_layers)}


def compare(run: RunTheory, first: dict[str, float], n_layers: int) -> tuple[dict, dict, dict]:
    """``(summary metrics, profiles, tags)`` from the prediction and the step-0 record ``first``."""
    p = run.prediction
    measured = _measured_profile(first, n_layers)
    measured_slope = theory.hidden_log_slope(measured ** 2)
    metrics = {"theory/sigma_w2": p.sigma_w2, "theory/sigma_b2": p.sigma_b2, "theory/q_star": p.q_star,
               "theory/chi1": p.chi1, "theory/ln_chi1": math.log(p.chi1) if p.chi1 > 0 else -math.inf,
               "theory/xi_grad": p.xi_grad, "theory/grad_log_slope": p.log_slope,
               "measured/grad_log_slope": measured_slope, "theory/slope_error": measured_slope - p.log_slope}
    tags = {"regime": p.regime} | _flow(measured_slope, n_layers)[1]
    if math.isfinite(measured_slope) and math.isfinite(p.log_slope):
        tags["theory_agrees"] = "yes" if agrees(measured_slope, p.log_slope) else "no"
    profiles = {"profile/q_theory": list(p.lengths), "profile/q_init": list(run.q_measured)}
    if run.streams is not None:
        profiles["profile/stream_length_theory"] = list(run.streams)
        profiles["profile/log10_stream_length_theory"] = [math.log10(v) for v in run.streams]
    if math.isfinite(measured[run.anchor]):  # without diagnostics at step 0 there is no anchor
        profiles["profile/grad_norm_theory"] = list(p.profile / p.profile[run.anchor] * measured[run.anchor])
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
            scale = measured[run.anchor] / run.prediction.profile[run.anchor]
            writer.writerow([k + 1, repr(float(run.prediction.lengths[k])), repr(float(run.q_measured[k])),
                             repr(float(run.prediction.profile[k] * scale)), repr(float(measured[k]))])
    return path

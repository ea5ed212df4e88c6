"""Mean-field theory of normalized and residual nets at initialization, beside ``theory`` for plain ones.

Weights ``W ~ (0, sigma_w2 / fan_in)``, biases ``N(0, sigma_b2)``, gamma 1, beta 0; at large width (and,
for batch normalization, a large batch) every pre-activation is Gaussian over the units or the batch, and
the back-propagated gradient independent of the forward values (the usual gradient-independence
assumption).  ``G_l`` is the expected squared norm of dL/dZ_l summed over layer l's units; a dense layer's
weight gradient is ``E||dL/dW_l||^2 = fan_in * E[input^2] * G_l`` (one sample), and dL/dA of the layer
below sums to ``sigma_w2 * G_l``.  Derived here:

**Normalized plain nets** (dense -> norm -> phi).  The normalized value is N(0, 1) whatever sigma_w2, so
every hidden layer looks alike.  The norm divides the gradient by the standard deviation it divided by:
over the batch (``batch``), ``Var_batch(Z) = sigma_w2 Var[phi(z)]`` (a unit's bias is constant over the
batch and removed); over the units (``layer``), ``sigma_w2 E[phi(z)^2] + sigma_b2``.  So per layer

    batch:  lambda = E[phi'(z)^2] / Var[phi(z)]          layer:  lambda = sigma_w2 E[phi'(z)^2] / (sigma_w2 E[phi(z)^2] + sigma_b2)

For ReLU, batch gives ``(1/2) / (1/2 - 1/(2 pi)) = pi / (pi - 1) = 1.467``: the gradient explosion of
batch-normalized nets at initialization of Yang, Pennington, Rao, Sohl-Dickstein & Schoenholz (2019), for
every sigma_w2; lambda = 1 only for a linear phi (Var = E[phi'^2] = 1): only the linear regime removes it.
Layer norm with ReLU and sigma_b2 = 0 gives lambda = 1.  A batch-normalized layer's weight gradient sees
its input's batch variance, not its mean square (dL/dZ sums to 0 over the batch).

**Residual nets** (Yang & Schoenholz 2017; pre-activation blocks ``h <- h + alpha F(h)``, F one layer
``phi(u) W + b`` or two, ``u = norm(h)`` or ``h``).  The stream is the stem's output ``a`` plus a sum of
branch outputs, Gaussian with variance ``s`` and independent of ``a`` at large width; so ``E[f(u)]`` is
a two-dimensional quadrature over ``a`` and the Gaussian.  Per block

    s   <- s + alpha^2 (sigma_w2 E[phi(u)^2] + sigma_b2)                       (one layer)
    H_b  = H_(b+1) (1 + alpha^2 sigma_w2 E[phi'(u)^2] / v)                       (H: E||dL/dh||^2)

with ``v = 1`` without a norm and ``v = Var(h)`` (the variance the norm divides by) with one.  Without a
norm and with ``alpha = 1`` the gradient grows geometrically (for ReLU and He's sigma_w2 = 2, by 2 a
block); with ``alpha = 1/sqrt(blocks)``, by ``(1 + 1/B)^B <= e`` over the whole net; with a norm, the
variance of the stream grows linearly and the gradient polynomially.  Post-activation blocks are not
covered (``residual_prediction`` refuses them).
"""

from __future__ import annotations

import math

import numpy as np

from .network import _as_activation
from .theory import CUT, Prediction, _WZ, _Z, _nodes, depth_scale, hidden_log_slope

__all__ = ["normalized_rate", "normalized_prediction", "residual_prediction", "stream_mean"]


def stream_mean(f, a: np.ndarray, s: float, weight: np.ndarray | None = None) -> float:
    """``E[w(z1) f(a(z1) + sqrt(s) z2)]`` for independent standard normal z1, z2, where ``a`` (and
    ``weight``, else 1) hold a(z1) (and w(z1)) at the quadrature's z1 nodes: per node, z2 is integrated on
    both sides of the point where the argument crosses 0 (where the ReLU family has its kink)."""
    w1 = _WZ if weight is None else _WZ * weight
    if s <= 0:
        return float(np.dot(w1, f(a)))
    root = math.sqrt(s)
    kink = np.clip(-a / root, -CUT, CUT)[:, None]
    z2, w2 = (np.concatenate(pair, axis=1) for pair in zip(_nodes(-CUT, kink), _nodes(kink, CUT)))
    return float(np.dot(w1, np.sum(w2 * f(a[:, None] + root * z2), axis=1)))


def _moments(act, a: np.ndarray, s: float, weight: np.ndarray | None = None) -> tuple[float, float, float]:
    """``(E[phi(u)], E[phi(u)^2], E[phi'(u)^2])`` (each times ``weight``) for u = a(z1) + sqrt(s) z2."""
    phi = lambda u: act.forward(u)  # noqa: E731
    dphi = lambda u: act.derivative(u, act.forward(u))  # noqa: E731
    return (stream_mean(phi, a, s, weight), stream_mean(lambda u: phi(u) ** 2, a, s, weight),
            stream_mean(lambda u: dphi(u) ** 2, a, s, weight))


def normalized_rate(activation, norm: str, sigma_w2: float = 2.0, sigma_b2: float = 0.0) -> float:
    """lambda: the factor of E||dL/dh||^2 per hidden layer of a plain net with ``norm`` (see the module)."""
    mean, mean_sq, dmean_sq = _moments(_as_activation(activation), _Z, 0.0)
    if norm == "batch":
        return dmean_sq / (mean_sq - mean * mean)
    if norm == "layer":
        return sigma_w2 * dmean_sq / (sigma_w2 * mean_sq + sigma_b2)
    raise ValueError(f"norm={norm!r}: the rate is for batch or layer normalization")


def _input_stats(X: np.ndarray) -> tuple[float, float]:
    """The data's mean square and mean per-feature variance (what a batch norm's first layer sees)."""
    X = np.asarray(X, np.float64)
    return float(np.mean(X * X)), float(np.mean(X.var(axis=0)))


def normalized_prediction(activation, norm: str, sizes, sigma_w2s, sigma_b2: float, X: np.ndarray) -> Prediction:
    """A plain net of ``sizes`` with ``norm`` after every hidden dense layer, from its data ``X``: per layer
    the activation input's mean square (1: normalized; the output layer's sigma_w2 E[phi^2] + sigma_b2) and
    the weight gradients' norms relative to the output layer's."""
    act = _as_activation(activation)
    mean, mean_sq, dmean_sq = _moments(act, _Z, 0.0)
    variance = mean_sq - mean * mean
    x_mean_sq, x_var = _input_stats(X)
    L = len(sizes) - 1
    # what each layer's weight gradient sees of its input (batch: its batch variance), and the variance
    # its norm divides by
    seen = [x_var if norm == "batch" else x_mean_sq] + [variance if norm == "batch" else mean_sq] * (L - 1)
    divided = [sigma_w2s[k] * seen[k] + (0.0 if norm == "batch" else sigma_b2) for k in range(L - 1)]
    G = [1.0] * L  # G_L = 1: the anchor
    for k in range(L - 2, -1, -1):
        G[k] = G[k + 1] * sigma_w2s[k + 1] * dmean_sq / divided[k]
    squared = np.array([sizes[k] * seen[k] * G[k] for k in range(L)])
    squared /= squared[-1]
    lengths = np.array([1.0] * (L - 1) + [sigma_w2s[-1] * mean_sq + sigma_b2])
    rate = normalized_rate(act, norm, float(np.mean(sigma_w2s[1:-1] or sigma_w2s)), sigma_b2)
    return Prediction(float(np.mean(sigma_w2s[1:-1] or sigma_w2s)), sigma_b2, 1.0, rate, depth_scale(rate),
                      lengths, np.sqrt(squared), hidden_log_slope(squared))


def residual_prediction(activation, norm: str, sizes, sigma_w2s, sigma_b2: float, X: np.ndarray, *,
                        alpha: float, layers_per_block: int, order: str = "pre"):
    """A residual net (stem, blocks of ``layers_per_block`` pre-activation layers, output layer; ``norm``
    none or layer) from its data ``X``: ``(Prediction, stream_lengths)``, the latter E[h^2] after each block.

    The stem's own gradient is dL/dh_0 times phi'(N_0) unit by unit, and every branch's share of dL/dh_0 is
    masked by phi'(u) of a u built on the same units' stem output: so the stem sees ``K = E[(dL/dh_0)^2
    phi'(N_0)^2]``, each branch's share taken with that weight, not the product of the two means."""
    if order != "pre" or norm == "batch":
        raise ValueError("the residual mean-field prediction covers pre-activation blocks without batch "
                         "normalization (a batch's gradients are correlated across its samples)")
    act = _as_activation(activation)
    L, lpb = len(sizes) - 1, layers_per_block
    blocks = (L - 2) // lpb
    x_mean_sq, _ = _input_stats(X)
    # the stem: Z0 = X W0 + b0, normalized to N(0, 1) or left N(0, p0); a = phi(N0) at the z1 nodes
    p0 = sigma_w2s[0] * x_mean_sq + sigma_b2
    stem_scale = 1.0 if norm == "layer" else math.sqrt(p0)
    a = act.forward(stem_scale * _Z)
    stem_mask = act.derivative(stem_scale * _Z, a) ** 2
    a_mean, a_sq, _ = _moments(act, stem_scale * _Z, 0.0)
    a_var = a_sq - a_mean * a_mean
    s_total = 0.0  # the stream's Gaussian part: the branches' outputs so far
    factors = []  # per block, per layer: (E[its input^2], G below / G above, the same with the stem's weight)
    lengths, stream_lengths = [stem_scale ** 2], []
    for b in range(blocks):
        if norm == "none":
            u_a, u_s, divide = a, s_total, 1.0
        else:  # over the units: (a - E a + sqrt(s) z2) / sd
            sd = math.sqrt(a_var + s_total)
            u_a, u_s, divide = (a - a_mean) / sd, s_total / sd ** 2, sd ** 2
        layers = []
        for j in range(lpb):
            k = 1 + b * lpb + j
            lengths.append(stream_mean(np.square, u_a, u_s))  # the activation's input: u
            _, mean_sq, dmean_sq = _moments(act, u_a, u_s)
            weighted = _moments(act, u_a, u_s, stem_mask)[2] if j == 0 else dmean_sq * float(np.dot(_WZ, stem_mask))
            layers.append((mean_sq, sigma_w2s[k] * dmean_sq / divide, sigma_w2s[k] * weighted / divide))
            p = sigma_w2s[k] * mean_sq + sigma_b2  # the layer's output Z: N(0, p) over the units
            u_a, u_s, divide = (_Z, 0.0, p) if norm == "layer" else (math.sqrt(p) * _Z, 0.0, 1.0)
        s_total += alpha ** 2 * p
        factors.append(layers)
        stream_lengths.append(a_sq + s_total)
    # backward: G of every dense layer from the output layer's (1) down; H = E||dL/dh||^2 on the stream,
    # K the same weighted by the stem's phi'^2
    G = [0.0] * L
    G[-1] = 1.0
    H = sigma_w2s[-1]
    K = H * float(np.dot(_WZ, stem_mask))
    chis = []
    for b in range(blocks - 1, -1, -1):
        g = alpha ** 2 * H  # dL/dZ of the block's last layer
        for j in range(lpb - 1, 0, -1):
            G[1 + b * lpb + j] = g
            g *= factors[b][j][1]
        G[1 + b * lpb] = g
        chis.append((H + g * factors[b][0][1]) / H)
        K += g * factors[b][0][2]
        H += g * factors[b][0][1]
    G[0] = K / (p0 if norm == "layer" else 1.0)
    seen = [x_mean_sq] + [m for layers in factors for m, _, _ in layers] + [stream_lengths[-1]]
    squared = np.array([sizes[k] * seen[k] * G[k] for k in range(L)])
    squared /= squared[-1]
    lengths.append(sigma_w2s[-1] * stream_lengths[-1] + sigma_b2)
    chi = math.exp(float(np.mean(np.log(chis)))) if chis else 1.0
    sigma_w2 = float(np.mean(sigma_w2s[1:-1]))
    return (Prediction(sigma_w2, sigma_b2, math.nan, chi, depth_scale(chi), np.array(lengths), np.sqrt(squared),
                       hidden_log_slope(squared)), np.array(stream_lengths))

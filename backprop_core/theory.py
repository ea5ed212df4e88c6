"""Mean-field theory of signal propagation at initialization, beside the engine's measurements.

For a deep net with weights W ~ (0, sigma_w2 / fan_in) and biases ~ N(0, sigma_b2), at large width
the pre-activations of a layer are Gaussian with a variance q that a layer maps to the next
(Poole et al. 2016), the correlation c of two inputs' pre-activations maps likewise, and a
backward pass scales the mean squared gradient by chi1 per layer (Schoenholz et al. 2017).
Dynamical isometry (Pennington et al. 2017) asks more: the whole input-output Jacobian's singular
values near 1; ``jacobian`` computes it for an actual network.

Gaussian expectations are quadratures on each half line, split at z = 0 (and, for two correlated
variables, at the second one's kink): every activation here is smooth away from 0, so the ReLU
family is integrated as exactly as tanh (a Gauss-Hermite node at 0 would bias a step derivative).
Notation: z ~ N(0, 1); phi the activation; q* the length map's fixed point.  Everything is NumPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .activations import Activation
from .network import Network, _as_activation

__all__ = ["gaussian_mean", "length_map", "q_star", "length_profile", "chi1", "chi_q", "correlation_map",
           "c_star", "chi_c", "critical_sigma_w2", "gradient_profile", "jacobian", "layer_lengths", "singular_values",
           "spectrum",
           "Prediction",
           "predict", "regime"]

CUT = 12.0  # the quadrature covers |z| <= 12: the normal density beyond is below 1e-31
_X, _W = np.polynomial.legendre.leggauss(96)
Q_MAX = 1e12  # a length map still growing here has no finite fixed point (q* = inf)
Q_MIN = 1e-300  # expectations at q = 0 are taken at this q: the limit, and relu'(0 * z) is not 0 but 1[z > 0]


def _nodes(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes on [a, b] (arrays of ends: one row of nodes each) with the normal density
    folded into the weights."""
    z = (b - a) / 2 * _X + (a + b) / 2
    return z, (b - a) / 2 * _W * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)


_Z, _WZ = (np.concatenate(pair) for pair in zip(_nodes(-CUT, 0.0), _nodes(0.0, CUT)))


def _phi(activation: Activation, u: np.ndarray) -> np.ndarray:
    return activation.forward(u)


def _dphi(activation: Activation, u: np.ndarray) -> np.ndarray:
    return activation.derivative(u, activation.forward(u))


def gaussian_mean(f) -> float:
    """E[f(z)], z ~ N(0, 1), for f vectorised and smooth on each side of 0."""
    return float(np.dot(_WZ, f(_Z)))


def _q(q: float) -> float:
    return min(max(q, Q_MIN), Q_MAX)


def length_map(q: float, activation, sigma_w2: float, sigma_b2: float) -> float:
    """q' = sigma_w2 E[phi(sqrt(q) z)^2] + sigma_b2: the next layer's pre-activation variance."""
    act, s = _as_activation(activation), math.sqrt(_q(q))
    return sigma_w2 * gaussian_mean(lambda z: _phi(act, s * z) ** 2) + sigma_b2


def q_star(activation, sigma_w2: float, sigma_b2: float) -> float:
    """The stable fixed point q* = length_map(q*), by bisection (iteration converges only like 1/l
    near criticality); 0 when the trivial one is stable, inf when q grows without bound."""
    h = lambda q: length_map(q, activation, sigma_w2, sigma_b2) - q  # noqa: E731
    if h(Q_MAX) > 0:
        return math.inf
    low, high = (Q_MIN if sigma_b2 > 0 else 1e-12), Q_MAX
    if h(low) <= 0:
        return 0.0
    for _ in range(200):  # halving log q: 312 decades shrink to a relative 1e-16 in ~62 steps
        mid = math.sqrt(low * high)
        low, high = (mid, high) if h(mid) > 0 else (low, mid)
        if high / low - 1 < 1e-15:
            break
    return math.sqrt(low * high)


def length_profile(activation, sigma_w2s, sigma_b2: float, q_input: float) -> np.ndarray:
    """q^1 .. q^L from the data's own mean squared input q_input: q^1 = sigma_w2[0] q_input + sigma_b2,
    then q^(l+1) = length_map(q^l) with layer l+1's sigma_w2."""
    q = [sigma_w2s[0] * q_input + sigma_b2]
    for sigma_w2 in sigma_w2s[1:]:
        q.append(length_map(q[-1], activation, sigma_w2, sigma_b2))
    return np.array(q)


def chi1(activation, sigma_w2: float, q: float) -> float:
    """chi1 = sigma_w2 E[phi'(sqrt(q) z)^2]: the factor of a mean squared gradient per layer."""
    act, s = _as_activation(activation), math.sqrt(_q(q))
    return sigma_w2 * gaussian_mean(lambda z: _dphi(act, s * z) ** 2)


def chi_q(activation, sigma_w2: float, q: float) -> float:
    """chi_q = d q'/d q at q = sigma_w2 E[phi(u) phi'(u) z] / sqrt(q), u = sqrt(q) z (Stein's lemma form)."""
    act, s = _as_activation(activation), math.sqrt(_q(q))
    return sigma_w2 * gaussian_mean(lambda z: _phi(act, s * z) * _dphi(act, s * z) * z) / s


def _pair_mean(f, g, q: float, c: float) -> float:
    """E[f(u1) g(u2)], u1 = sqrt(q) z1, u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2): split at z1 = 0 and,
    for each z1 node (one row), at the z2 where u2 = 0; one array expression over all rows."""
    s = math.sqrt(_q(q))
    if c >= 1.0:
        return gaussian_mean(lambda z: f(s * z) * g(s * z))
    r = math.sqrt(1.0 - c * c)
    kink = np.clip(-c * _Z / r, -CUT, CUT)[:, None]
    z2, w2 = (np.concatenate(pair, axis=1) for pair in zip(_nodes(-CUT, kink), _nodes(kink, CUT)))
    inner = np.sum(w2 * g(s * (c * _Z[:, None] + r * z2)), axis=1)
    return float(np.dot(_WZ * f(s * _Z), inner))


def correlation_map(c: float, activation, sigma_w2: float, sigma_b2: float, q: float) -> float:
    """c' = (sigma_w2 E[phi(u1) phi(u2)] + sigma_b2) / q at the fixed length q = q*."""
    act = _as_activation(activation)
    f = lambda u: _phi(act, u)  # noqa: E731
    return (sigma_w2 * _pair_mean(f, f, q, c) + sigma_b2) / _q(q)


def c_star(activation, sigma_w2: float, sigma_b2: float, q: float | None = None) -> float:
    """The correlation map's stable fixed point: 1 in the ordered phase (chi1 <= 1), else the root
    in [0, 1) of c' - c, by bisection."""
    q = q_star(activation, sigma_w2, sigma_b2) if q is None else q
    if chi1(activation, sigma_w2, q) <= 1.0 or not math.isfinite(q):
        return 1.0
    g = lambda c: correlation_map(c, activation, sigma_w2, sigma_b2, q) - c  # noqa: E731
    low, high = 0.0, 1.0 - 1e-9
    if g(low) < 0:
        low = -1.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if g(mid) > 0 else (low, mid)
    return (low + high) / 2


def chi_c(activation, sigma_w2: float, sigma_b2: float, q: float, c: float) -> float:
    """chi_c = sigma_w2 E[phi'(u1) phi'(u2)] at (q*, c*): the correlation map's slope there."""
    act = _as_activation(activation)
    d = lambda u: _dphi(act, u)  # noqa: E731
    return sigma_w2 * _pair_mean(d, d, q, c)


def depth_scale(chi: float) -> float:
    """xi = -1 / ln chi: the layers over which a quantity scaled by chi per layer changes by e
    (inf at chi = 1; negative when it grows)."""
    return math.inf if chi == 1.0 else -1.0 / math.log(chi) if chi > 0 else 0.0


def critical_sigma_w2(activation, sigma_b2: float, low: float = 1e-2, high: float = 1e2) -> float:
    """The sigma_w2 with chi1(sigma_w2, q*(sigma_w2, sigma_b2)) = 1, by bisection in log sigma_w2."""
    excess = lambda w: chi1(activation, w, q_star(activation, w, sigma_b2)) - 1.0  # noqa: E731
    if excess(low) > 0 or excess(high) < 0:
        raise ValueError(f"no critical sigma_w2 in [{low}, {high}] for sigma_b2={sigma_b2}")
    for _ in range(100):
        mid = math.sqrt(low * high)
        low, high = (mid, high) if excess(mid) < 0 else (low, mid)
        if high / low - 1 < 1e-14:
            break
    return math.sqrt(low * high)


def gradient_profile(activation, sizes, sigma_w2s, sigma_b2: float, q_input: float,
                     lengths: np.ndarray | None = None) -> np.ndarray:
    """Predicted E||dL/dW_l||^2 per layer (one sample), relative to the output layer's:
    N_(l-1) A_(l-1) prod_(k=l..L-1) chi_k / (N_(L-1) A_(L-1)), with A_k = E[phi(sqrt(q^k) z)^2]
    (A_0 = q_input) and chi_k = sigma_w2[k] E[phi'(sqrt(q^k) z)^2] (``lengths``: q^l if already known)."""
    act = _as_activation(activation)
    q = length_profile(act, sigma_w2s, sigma_b2, q_input) if lengths is None else lengths
    L = len(sigma_w2s)
    mean_sq = [q_input] + [length_map(q[k], act, 1.0, 0.0) for k in range(L - 1)]  # A_0 .. A_(L-1)
    chis = [chi1(act, sigma_w2s[k + 1], q[k]) for k in range(L - 1)]  # chi_1 .. chi_(L-1)
    below = np.cumprod([1.0] + chis[::-1])[::-1]  # prod_(k=l..L-1) chi_k for l = 1..L
    profile = np.array([sizes[l] * mean_sq[l] for l in range(L)]) * below
    return profile / profile[-1]


def jacobian(net: Network, X: np.ndarray, upto: int | None = None) -> np.ndarray:
    """Per sample, J[i, j] = d A_upto[j] / d x[i] = (W_1 D_1 W_2 D_2 ... W_upto D_upto)[i, j],
    D_k = diag(phi'(Z_k)); shape (n, n_in, sizes[upto]).  ``upto`` defaults to the last hidden
    layer (the output head left out), or the output layer of a net without hidden layers."""
    upto = upto or max(net.n_layers - 1, 1)
    _, Zs, As = net.layer_values(np.asarray(X, dtype=net.dtype))
    n, n_in = Zs[0].shape[0], net.sizes[0]
    J = np.broadcast_to(np.eye(n_in), (n, n_in, n_in))
    for W, activation, Z, A in zip(net.weights[:upto], net.activations, Zs, As):
        J = (J @ W) * activation.derivative(Z, A)[:, None, :]
    return J


def layer_lengths(net: Network, X: np.ndarray) -> np.ndarray:
    """The measured q^l: mean Z_l^2 over the samples and units of every layer, at ``net``'s weights."""
    _, Zs, _ = net.layer_values(np.asarray(X, dtype=net.dtype))
    return np.array([np.mean(np.square(Z, dtype=np.float64)) for Z in Zs])


def singular_values(J: np.ndarray) -> np.ndarray:
    """Each sample's Jacobian's singular values, shape (n, min(n_in, width))."""
    return np.linalg.svd(J, compute_uv=False)


def spectrum(s: np.ndarray) -> dict[str, float]:
    """Statistics of the squared singular values s^2, pooled over the samples."""
    s = np.asarray(s).ravel()
    s2 = s * s
    return {"s2_mean": float(s2.mean()), "s2_var": float(s2.var()), "s_max": float(s.max()),
            "s_min": float(s.min())}


def regime(chi: float, tolerance: float = 0.05) -> str:
    """ordered (chi1 < 1 - tolerance), critical, or chaotic (chi1 > 1 + tolerance)."""
    return "ordered" if chi < 1 - tolerance else "chaotic" if chi > 1 + tolerance else "critical"


@dataclass(frozen=True)
class Prediction:
    """What the theory says of one net at initialization (hidden layers' sigma_w2)."""

    sigma_w2: float
    sigma_b2: float
    q_star: float
    chi1: float
    xi_grad: float
    lengths: np.ndarray  # q^l per layer from the data's own input length (length_profile)
    profile: np.ndarray  # predicted ||dL/dW_l|| relative to the output layer's (square root of gradient_profile)
    log_slope: float  # predicted d ln E||dL/dW_l||^2 per layer towards the input, over the hidden-to-hidden layers

    @property
    def regime(self) -> str:
        return regime(self.chi1)


def predict(activation, sizes, sigma_w2s, sigma_b2: float, q_input: float) -> Prediction:
    """The mean-field prediction for a net of ``sizes`` whose layer l has sigma_w2s[l-1]."""
    hidden = sigma_w2s[1:-1] if len(sigma_w2s) > 2 else sigma_w2s
    sigma_w2 = float(np.mean(hidden))
    q = q_star(activation, sigma_w2, sigma_b2)
    chi = chi1(activation, sigma_w2, q if math.isfinite(q) else Q_MAX)
    lengths = length_profile(activation, sigma_w2s, sigma_b2, q_input)
    profile = gradient_profile(activation, sizes, sigma_w2s, sigma_b2, q_input, lengths)
    return Prediction(sigma_w2, sigma_b2, q, chi, depth_scale(chi), lengths, np.sqrt(profile),
                      hidden_log_slope(profile))


def hidden_log_slope(squared_norms: np.ndarray) -> float:
    """The least-squares slope of ln ||dL/dW_l||^2 per layer towards the input, over the layers
    between two hidden ones (2 .. L-1: same fan-in and fan-out), or over all layers in a net with
    fewer than two such; NaN for a single layer or a non-positive norm."""
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero norm (zero init, dead units): NaN, quietly
        logs = np.log(np.asarray(squared_norms, dtype=float))
    inner = logs[1:-1] if len(logs) >= 4 else logs
    if len(inner) < 2 or not np.all(np.isfinite(inner)):
        return math.nan
    layers = np.arange(len(inner))
    return float(-np.polyfit(layers, inner, 1)[0])

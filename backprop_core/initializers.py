"""Weight and bias initializers.

A weight initializer is built from its parameters, ``get_initializer("normal", std=0.1)``: an
``Initializer``, called with the layers' weight shapes ``[(fan_in, fan_out), ...]``, an explicit
``np.random.Generator`` and a dtype; it returns one array per layer, shaped ``(fan_in, fan_out)``.
It initializes the whole network at once so that ``legacy`` (one seeded stream across layers) and
``explicit`` (given values) fit the same call.  Biases use the same type, called with the bias
shapes ``[(n,), ...]``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .registry import ParameterError, build

__all__ = ["Initializer", "INITIALIZERS", "BIAS_INITIALIZERS", "DRAWS_OWN_BIASES", "get_initializer",
           "get_bias_initializer"]

Shapes = Sequence[tuple[int, ...]]
Draw = Callable[[Shapes, np.random.Generator, np.dtype], list[np.ndarray]]


@dataclass(frozen=True)
class Initializer:
    """How a network's arrays are drawn.

    ``draw(shapes, rng, dtype)`` gives one array per shape.  ``variance(fan_in, fan_out)``, where the
    distribution has one, is the variance of an entry: the mean-field theory's sigma_w2 = fan_in Var(W)
    (None for given values or a nonzero constant).  ``biases``: the initializer of the biases this one
    draws itself (``mean_field``'s N(0, sigma_b2)), or None.
    """

    draw: Draw
    variance: Callable[[int, int], float] | None = None
    biases: Initializer | None = None

    def __call__(self, shapes: Shapes, rng: np.random.Generator, dtype=np.float64) -> list[np.ndarray]:
        return self.draw(shapes, rng, dtype)


BiasInitializer = Initializer  # called with the bias shapes [(n,), ...] ("shared" biases have shape (1,))


def _per_layer(draw: Callable[[tuple[int, ...], np.random.Generator], np.ndarray],
               variance: Callable[..., float] | None = None) -> Initializer:
    """An initializer that draws each layer's array from its shape: a weight's ``(fan_in, fan_out)`` or
    a bias's ``(n,)``, so the same draws serve both."""
    def layers(shapes: Shapes, rng: np.random.Generator, dtype=np.float64) -> list[np.ndarray]:
        return [np.asarray(draw(tuple(shape), rng), dtype=dtype) for shape in shapes]

    return Initializer(layers, variance)


def _positive(key: str, value: float) -> float:
    if not value > 0:
        raise ParameterError(key, value, "must be > 0")
    return float(value)


def zeros() -> Initializer:
    return _per_layer(lambda shape, rng: np.zeros(shape), lambda *shape: 0.0)


def constant(value: float = 0.0) -> Initializer:
    return _per_layer(lambda shape, rng: np.full(shape, float(value)), (lambda *shape: 0.0) if value == 0 else None)


def normal(std: float = 0.01, mean: float = 0.0) -> Initializer:
    """N(mean, std^2)."""
    std = _positive("std", std)
    return _per_layer(lambda shape, rng: rng.normal(mean, std, shape), (lambda *shape: std * std) if mean == 0 else None)


def uniform(limit: float = 0.05) -> Initializer:
    """U[-limit, limit]."""
    limit = _positive("limit", limit)
    return _per_layer(lambda shape, rng: rng.uniform(-limit, limit, shape), lambda *shape: limit * limit / 3)


def _scaled_normal(variance: Callable[[int, int], float], gain: float) -> Initializer:
    gain = _positive("gain", gain)
    return _per_layer(lambda shape, rng: rng.normal(0.0, gain * np.sqrt(variance(*shape)), shape),
                      lambda i, o: gain * gain * variance(i, o))


def _scaled_uniform(variance: Callable[[int, int], float], gain: float) -> Initializer:
    # U[-l, l] has variance l^2 / 3
    gain = _positive("gain", gain)

    def draw(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        limit = gain * np.sqrt(3.0 * variance(*shape))
        return rng.uniform(-limit, limit, shape)

    return _per_layer(draw, lambda i, o: gain * gain * variance(i, o))


def glorot_uniform(gain: float = 1.0) -> Initializer:
    """U[-sqrt(6/(fan_in+fan_out)), +sqrt(6/(fan_in+fan_out))] (Glorot & Bengio 2010's "normalized")."""
    return _scaled_uniform(lambda i, o: 2.0 / (i + o), gain)


def glorot_normal(gain: float = 1.0) -> Initializer:
    """N(0, 2/(fan_in+fan_out))."""
    return _scaled_normal(lambda i, o: 2.0 / (i + o), gain)


def he_uniform(gain: float = 1.0) -> Initializer:
    """U[-sqrt(6/fan_in), +sqrt(6/fan_in)]."""
    return _scaled_uniform(lambda i, o: 2.0 / i, gain)


def he_normal(gain: float = 1.0) -> Initializer:
    """N(0, 2/fan_in) (He et al. 2015)."""
    return _scaled_normal(lambda i, o: 2.0 / i, gain)


def lecun_normal(gain: float = 1.0) -> Initializer:
    """N(0, 1/fan_in)."""
    return _scaled_normal(lambda i, o: 1.0 / i, gain)


def standard() -> Initializer:
    """U[-1/sqrt(fan_in), 1/sqrt(fan_in)]: Glorot & Bengio 2010's "standard" initialization."""
    return _per_layer(lambda shape, rng: rng.uniform(-1.0 / np.sqrt(shape[0]), 1.0 / np.sqrt(shape[0]), shape),
                      lambda i, o: 1.0 / (3 * i))


def orthogonal(gain: float = 1.0) -> Initializer:
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian one (Saxe et al. 2014)."""
    gain = _positive("gain", gain)

    def draw(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        i, o = shape
        G = rng.standard_normal((max(i, o), min(i, o)))
        Q, R = np.linalg.qr(G)
        Q *= np.sign(np.diag(R))  # makes the draw uniform over orthogonal matrices
        return gain * (Q if i >= o else Q.T)

    return _per_layer(draw, lambda i, o: gain * gain / max(i, o))


def mean_field(sigma_w2: float = 1.0, sigma_b2: float = 0.0, weights: str = "gaussian") -> Initializer:
    """W ~ N(0, sigma_w2 / fan_in), biases ~ N(0, sigma_b2): the mean-field theory's parameters, so a
    phase diagram is a sweep over two keys.  ``weights="orthogonal"``: a random (semi-)orthogonal
    matrix scaled to the same fan_in Var(W) = sigma_w2 (exactly sigma_w for a square layer)."""
    sigma_w2 = _positive("sigma_w2", sigma_w2)
    if not sigma_b2 >= 0:
        raise ParameterError("sigma_b2", sigma_b2, "must be >= 0")
    if weights not in ("gaussian", "orthogonal"):
        raise ParameterError("weights", weights, "must be gaussian or orthogonal")
    square = orthogonal(1.0)

    def draw(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        i, o = shape
        if weights == "gaussian":
            return rng.normal(0.0, np.sqrt(sigma_w2 / i), shape)
        return np.sqrt(sigma_w2 * max(i, o) / i) * square([shape], rng)[0]  # entries' variance 1/max(i, o)

    biases = normal(std=float(np.sqrt(sigma_b2))) if sigma_b2 > 0 else zeros()
    return Initializer(_per_layer(draw).draw, lambda i, o: sigma_w2 / i, biases)


def legacy(seed: int = 0, scale: float = 1.0) -> Initializer:
    """The draws of ``np.random.seed(seed)`` then ``np.random.randn(fan_out, fan_in) * scale``
    layer by layer, transposed into our ``(fan_in, fan_out)`` layout.

    It reproduces published NumPy programs exactly.  It uses its own ``RandomState``,
    which gives the same stream as the global one, and ignores the generator passed in.
    """

    def layers(shapes: Shapes, rng: np.random.Generator, dtype=np.float64) -> list[np.ndarray]:
        stream = np.random.RandomState(seed)
        return [np.asarray((stream.randn(o, i) * scale).T, dtype=dtype) for i, o in shapes]

    return Initializer(layers, lambda i, o: scale * scale)


def explicit(weights: Sequence) -> Initializer:
    """Given values: one ``(fan_in, fan_out)`` nested list per layer."""
    return _given_arrays("weights", weights, broadcast=False)


def _given_arrays(param: str, values: Sequence, broadcast: bool) -> Initializer:
    """Layer by layer, the arrays given in ``values``; with ``broadcast``, a scalar (or one-element
    list) fills its layer."""
    def layers(shapes: Shapes, rng: np.random.Generator, dtype=np.float64) -> list[np.ndarray]:
        if len(values) != len(shapes):
            raise ParameterError(param, None, f"gives {len(values)} layers, the architecture has {len(shapes)}",
                                 show_value=False)
        out = []
        for k, (given, shape) in enumerate(zip(values, shapes), start=1):
            array = np.asarray(given, dtype=dtype)
            if broadcast and array.size == 1:
                array = np.full(shape, array.reshape(()), dtype)
            if array.shape != tuple(shape):
                raise ParameterError(f"{param}[{k - 1}]", None, f"has shape {array.shape}, layer {k} needs "
                                     f"{tuple(shape)}" + (" = (fan_in, fan_out)" if len(shape) == 2 else ""),
                                     show_value=False)
            out.append(array)
        return out

    return Initializer(layers)


INITIALIZERS: dict[str, Callable[..., Initializer]] = {
    f.__name__: f
    for f in (
        zeros, constant, normal, uniform, glorot_uniform, glorot_normal, he_uniform, he_normal,
        lecun_normal, orthogonal, standard, mean_field, explicit, legacy,
    )
}
DRAWS_OWN_BIASES = frozenset({"mean_field"})  # their biases are theirs: a bias initializer has no say
# the common aliases
INITIALIZERS |= {
    "xavier_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "kaiming_uniform": he_uniform,
    "kaiming_normal": he_normal,
}


def get_initializer(name: str, **params) -> Initializer:
    """The weight initializer registered as ``name``, built with its parameters."""
    return build("init", name, INITIALIZERS, **params)


def _bias_explicit(values: Sequence) -> BiasInitializer:
    """One entry per layer: a scalar (broadcast over the layer) or a list of one value per unit."""
    return _given_arrays("values", values, broadcast=True)


BIAS_INITIALIZERS: dict[str, Callable[..., BiasInitializer]] = {
    "zeros": zeros,
    "constant": constant,
    "normal": functools.partial(normal, std=1.0),  # biases N(0, 1) by default, as in Nielsen's book
    "explicit": _bias_explicit,
}


def get_bias_initializer(name: str, **params) -> BiasInitializer:
    return build("bias initializer", name, BIAS_INITIALIZERS, **params)

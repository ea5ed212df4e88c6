"""Weight and bias initializers.

A weight initializer is built from its parameters, ``get_initializer("normal", std=0.1)``,
and called with the layers' weight shapes ``[(fan_in, fan_out), ...]``, an explicit
``np.random.Generator`` and a dtype; it returns one array per layer, shaped
``(fan_in, fan_out)``.  It initializes the whole network at once so that ``legacy``
(one seeded stream across layers) and ``explicit`` (given values) fit the same call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["INITIALIZERS", "BIAS_INITIALIZERS", "get_initializer", "get_bias_initializer"]

Shapes = Sequence[tuple[int, int]]
Initializer = Callable[[Shapes, np.random.Generator, np.dtype], list[np.ndarray]]


def _per_layer(draw: Callable[[int, int, np.random.Generator], np.ndarray]) -> Initializer:
    def init(shapes: Shapes, rng: np.random.Generator, dtype=np.float64) -> list[np.ndarray]:
        return [np.asarray(draw(fan_in, fan_out, rng), dtype=dtype) for fan_in, fan_out in shapes]

    return init


def _positive(key: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f"init.{key}={value!r} must be > 0")
    return float(value)


def zeros() -> Initializer:
    return _per_layer(lambda i, o, rng: np.zeros((i, o)))


def constant(value: float = 0.0) -> Initializer:
    return _per_layer(lambda i, o, rng: np.full((i, o), float(value)))


def normal(std: float = 0.01, mean: float = 0.0) -> Initializer:
    """N(mean, std^2)."""
    std = _positive("std", std)
    return _per_layer(lambda i, o, rng: rng.normal(mean, std, (i, o)))


def uniform(limit: float = 0.05) -> Initializer:
    """U[-limit, limit]."""
    limit = _positive("limit", limit)
    return _per_layer(lambda i, o, rng: rng.uniform(-limit, limit, (i, o)))


def _scaled_normal(variance: Callable[[int, int], float], gain: float) -> Initializer:
    gain = _positive("gain", gain)
    return _per_layer(lambda i, o, rng: rng.normal(0.0, gain * np.sqrt(variance(i, o)), (i, o)))


def _scaled_uniform(variance: Callable[[int, int], float], gain: float) -> Initializer:
    # U[-l, l] has variance l^2 / 3
    gain = _positive("gain", gain)

    def draw(i: int, o: int, rng: np.random.Generator) -> np.ndarray:
        limit = gain * np.sqrt(3.0 * variance(i, o))
        return rng.uniform(-limit, limit, (i, o))

    return _per_layer(draw)


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
    return _per_layer(lambda i, o, rng: rng.uniform(-1.0 / np.sqrt(i), 1.0 / np.sqrt(i), (i, o)))


def orthogonal(gain: float = 1.0) -> Initializer:
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian one (Saxe et al. 2014)."""
    gain = _positive("gain", gain)

    def draw(i: int, o: int, rng: np.random.Generator) -> np.ndarray:
        G = rng.standard_normal((max(i, o), min(i, o)))
        Q, R = np.linalg.qr(G)
        Q *= np.sign(np.diag(R))  # makes the draw uniform over orthogonal matrices
        return gain * (Q if i >= o else Q.T)

    return _per_layer(draw)


def legacy(seed: int = 0, scale: float = 1.0) -> Initializer:
    """The draws of ``np.random.seed(seed)`` then ``np.random.randn(fan_out, fan_in) * scale``
    layer by layer, transposed into our ``(fan_in, fan_out)`` layout.

    It reproduces published NumPy programs exactly.  It uses its own ``RandomState``,
    which gives the same stream as the global one, and ignores the generator passed in.
    """

    def init(shapes: Shapes, rng: np.random.Generator, dtype=np.float64) -> list[np.ndarray]:
        stream = np.random.RandomState(seed)
        return [np.asarray((stream.randn(o, i) * scale).T, dtype=dtype) for i, o in shapes]

    return init


def explicit(weights: Sequence) -> Initializer:
    """Given values: one ``(fan_in, fan_out)`` nested list per layer."""
    given = [np.asarray(W, dtype=np.float64) for W in weights]

    def init(shapes: Shapes, rng: np.random.Generator, dtype=np.float64) -> list[np.ndarray]:
        if len(given) != len(shapes):
            raise ValueError(f"init.weights gives {len(given)} layers, the architecture has {len(shapes)}")
        for k, (W, shape) in enumerate(zip(given, shapes), start=1):
            if W.shape != tuple(shape):
                raise ValueError(
                    f"init.weights[{k - 1}] has shape {W.shape}, layer {k} needs (fan_in, fan_out) = {tuple(shape)}"
                )
        return [W.astype(dtype) for W in given]

    return init


INITIALIZERS: dict[str, Callable[..., Initializer]] = {
    f.__name__: f
    for f in (
        zeros, constant, normal, uniform, glorot_uniform, glorot_normal, he_uniform, he_normal,
        lecun_normal, orthogonal, standard, explicit, legacy,
    )
}
# the common aliases
INITIALIZERS |= {
    "xavier_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "kaiming_uniform": he_uniform,
    "kaiming_normal": he_normal,
}


def get_initializer(name: str, **params) -> Initializer:
    """The weight initializer registered as ``name``, built with its parameters."""
    if name not in INITIALIZERS:
        raise ValueError(f"init={name!r} is unknown; valid names: {', '.join(sorted(INITIALIZERS))}")
    try:
        return INITIALIZERS[name](**params)
    except TypeError as err:  # an unexpected keyword: name the accepted ones
        raise ValueError(f"init={name!r}: {err}") from None


# Biases: called with the bias shapes [(n,), ...]; "shared" biases have shape (1,).
BiasInitializer = Callable[[Sequence[tuple[int]], np.random.Generator, np.dtype], list[np.ndarray]]


def _bias_zeros() -> BiasInitializer:
    return lambda shapes, rng, dtype=np.float64: [np.zeros(s, dtype) for s in shapes]


def _bias_constant(value: float = 0.0) -> BiasInitializer:
    return lambda shapes, rng, dtype=np.float64: [np.full(s, value, dtype) for s in shapes]


def _bias_normal(std: float = 1.0, mean: float = 0.0) -> BiasInitializer:
    std = _positive("bias_std", std)
    return lambda shapes, rng, dtype=np.float64: [rng.normal(mean, std, s).astype(dtype) for s in shapes]


def _bias_explicit(values: Sequence) -> BiasInitializer:
    """One entry per layer: a scalar (broadcast over the layer) or a list of one value per unit."""

    def init(shapes, rng, dtype=np.float64):
        if len(values) != len(shapes):
            raise ValueError(f"init.biases gives {len(values)} layers, the architecture has {len(shapes)}")
        out = []
        for k, (b, shape) in enumerate(zip(values, shapes), start=1):
            b = np.asarray(b, dtype=dtype)
            if b.ndim == 0 or b.shape == (1,):
                b = np.full(shape, b.reshape(()), dtype)
            if b.shape != tuple(shape):
                raise ValueError(f"init.biases[{k - 1}] has shape {b.shape}, layer {k} needs {tuple(shape)}")
            out.append(b)
        return out

    return init


BIAS_INITIALIZERS: dict[str, Callable[..., BiasInitializer]] = {
    "zeros": _bias_zeros,
    "constant": _bias_constant,
    "normal": _bias_normal,
    "explicit": _bias_explicit,
}


def get_bias_initializer(name: str, **params) -> BiasInitializer:
    if name not in BIAS_INITIALIZERS:
        raise ValueError(
            f"init.bias={name!r} is unknown; valid names: {', '.join(sorted(BIAS_INITIALIZERS))}"
        )
    return BIAS_INITIALIZERS[name](**params)

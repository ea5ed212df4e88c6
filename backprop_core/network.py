"""A dense multilayer perceptron with explicit forward and backward passes.

All parameters live in one flat vector, weights first and biases after them, and
each layer's ``W`` (shape ``(fan_in, fan_out)``) and ``b`` are views into it; the
gradients mirror that layout.  So an optimizer updates every trainable parameter in
one vectorised operation, frozen biases are simply the tail left out of
``trainable``, and per-layer norms are one ``np.add.reduceat`` over the whole net.
A training pass writes every layer's Z, A, f'(Z) and dL/dA into buffers laid out the same
way (``PassBuffers``), allocated once per batch size rather than once per step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .activations import Activation, get_activation
from .keys import layer_leaf as leaf
from .initializers import BiasInitializer, Initializer, get_bias_initializer
from .losses import Loss

__all__ = ["Network", "LayerValues", "PassBuffers", "BIAS_MODES", "HIDDEN_DERIVATIVES"]

BIAS_MODES = ("per_unit", "shared", "none")  # a bias per unit, one per layer, or no bias
HIDDEN_DERIVATIVES = ("exact", "one")  # "one": f'(z) := 1 in the hidden layers' backward pass (not the gradient)


def _as_activation(activation: str | Activation) -> Activation:
    return activation if isinstance(activation, Activation) else get_activation(activation)


def flat_views(flat: np.ndarray, start: int, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Consecutive views of ``flat`` from ``start``, one per shape."""
    views = []
    for shape in shapes:
        size = math.prod(shape)
        views.append(flat[start:start + size].reshape(shape))
        start += size
    return views


class LayerValues(NamedTuple):
    """Every layer's input (the previous layer's A, or X), pre-activation Z and activation A."""

    inputs: list[np.ndarray]
    Z: list[np.ndarray]
    A: list[np.ndarray]


def _check_arguments(sizes: tuple[int, ...], bias: str, dtype: np.dtype, hidden_derivative: str) -> None:
    if hidden_derivative not in HIDDEN_DERIVATIVES:
        raise ValueError(f"hidden_derivative={hidden_derivative!r} is unknown; valid: {', '.join(HIDDEN_DERIVATIVES)}")
    if len(sizes) < 2:
        raise ValueError(f"sizes={list(sizes)} needs an input and an output width")
    if min(sizes) < 1:
        raise ValueError(f"sizes={list(sizes)}: every layer width must be >= 1")
    if bias not in BIAS_MODES:
        raise ValueError(f"bias={bias!r} is unknown; valid modes: {', '.join(BIAS_MODES)}")
    if dtype not in (np.float64, np.float32):
        raise ValueError(f"dtype={dtype} is not supported; use float64 or float32")


class PassBuffers:
    """Z, A, f'(Z) and dL/dA of every layer for a pass over ``rows`` samples.

    Each quantity is one flat array holding the layers one after the other, each layer's
    ``(rows, width)`` block contiguous (``Z[k]`` is a view of ``flat["Z"]``); so an elementwise
    operation or a per-layer sum (``np.add.reduceat`` at ``starts``) covers every layer in one call.
    """

    QUANTITIES = ("Z", "A", "dA_dZ", "dL_dA")

    def __init__(self, rows: int, widths: Sequence[int], dtype: np.dtype) -> None:
        self.rows = rows
        self.sizes = rows * np.array(widths, np.intp)  # entries per layer
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.intp)
        self.flat = {name: np.empty(int(self.sizes.sum()), dtype) for name in self.QUANTITIES}
        layers = {name: [flat[start:start + size].reshape(rows, width)
                         for start, size, width in zip(self.starts, self.sizes, widths)]
                  for name, flat in self.flat.items()}
        self.Z, self.A, self.dA_dZ, self.dL_dA = (layers[name] for name in self.QUANTITIES)


class Network:
    """An MLP ``sizes[0] -> ... -> sizes[-1]``: ``Z = A_prev @ W + b``, ``A = f(Z)``.

    Parameters
    ----------
    sizes : layer widths from input to output, e.g. ``[2, 3, 1]`` (L = len(sizes) - 1 weight layers)
    activation : hidden activation, a registered name or an ``Activation``
    output_activation : activation of the last layer
    bias : ``per_unit`` (a bias per unit), ``shared`` (one bias per layer) or ``none``
    train_bias : False freezes the biases (their gradients are still computed)
    dtype : float64 (default) or float32
    hidden_derivative : ``exact`` (backpropagation) or ``one``: the hidden activations' derivative
        replaced by 1 in the backward pass, the shortcut Prasad 2021 ("What's Happening in Backpropagation?") asks about.  ``grads`` are then
        *not* the gradient (the gradient check says so); the output layer's delta stays exact.
    """

    blocks: tuple = ()  # a plain net has no residual blocks (a BlockNetwork's are lists of layer indices)

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Activation = "tanh",
        output_activation: str | Activation = "identity",
        *,
        bias: str = "per_unit",
        train_bias: bool = True,
        dtype: type | np.dtype = np.float64,
        hidden_derivative: str = "exact",
    ) -> None:
        sizes = tuple(int(n) for n in sizes)
        _check_arguments(sizes, bias, np.dtype(dtype), hidden_derivative)
        self.hidden_derivative = hidden_derivative
        self.dtype = np.dtype(dtype)
        self.hidden_activation = _as_activation(activation)
        self.output_activation = _as_activation(output_activation)
        if not self.hidden_activation.elementwise and len(sizes) > 2:
            raise ValueError(f"activation={self.hidden_activation.name!r} is an output activation only")
        self.sizes = sizes
        self.bias_mode = bias
        self.train_bias = bool(train_bias)
        L = self.n_layers = len(sizes) - 1
        self.activations = [self.hidden_activation] * (L - 1) + [self.output_activation]
        self._lay_out_parameters()
        self.cache: dict[str, list] = {"inputs": [], "Z": [], "A": [], "dA_dZ": []}
        self._buffers: PassBuffers | None = None

    def _lay_out_parameters(self, extra: int = 0) -> None:
        """The flat parameter and gradient vectors (the dense layers' W, then their b, then ``extra``
        entries: a ``BlockNetwork``'s gamma, beta, alpha), and every dense layer's views into them."""
        sizes, bias, L = self.sizes, self.bias_mode, self.n_layers
        self.weight_shapes = list(zip(sizes[:-1], sizes[1:]))
        self.bias_shapes = [(1,) if bias == "shared" else (n,) for n in sizes[1:]] if bias != "none" else []
        weight_sizes = [i * o for i, o in self.weight_shapes]
        bias_sizes = [s[0] for s in self.bias_shapes]
        self.weight_offsets = np.cumsum([0] + weight_sizes[:-1])
        self.n_weights = sum(weight_sizes)
        self.n_dense_params = self.n_weights + sum(bias_sizes)
        self.n_params = self.n_dense_params + extra
        self.n_trainable = self.n_params if self.train_bias else self.n_weights

        self.params = np.zeros(self.n_params, self.dtype)
        self.grads = np.zeros(self.n_params, self.dtype)
        self.weights = flat_views(self.params, 0, self.weight_shapes)
        self.dL_dW = flat_views(self.grads, 0, self.weight_shapes)
        self.biases = flat_views(self.params, self.n_weights, self.bias_shapes) or [None] * L
        self.dL_db = flat_views(self.grads, self.n_weights, self.bias_shapes) or [None] * L

        # the back-propagated error summed over the batch, dL/dZ.sum(0) per layer: with a bias
        # per unit it *is* dL/db (so it is written there); otherwise it is kept on its own
        unit_shapes = [(n,) for n in sizes[1:]]
        errors_flat = self.grads[self.n_weights:self.n_dense_params] if bias == "per_unit" \
            else np.zeros(sum(sizes[1:]), self.dtype)
        self.unit_errors = flat_views(errors_flat, 0, unit_shapes)

    def __repr__(self) -> str:
        return (
            f"Network(sizes={list(self.sizes)}, activation={self.hidden_activation!r}, "
            f"output_activation={self.output_activation!r}, bias={self.bias_mode!r}, "
            f"train_bias={self.train_bias}, dtype={self.dtype.name}"
            + (f", hidden_derivative={self.hidden_derivative!r})" if self.hidden_derivative != "exact" else ")")
        )

    # ---------------------------------------------------------------- parameters
    @property
    def trainable(self) -> np.ndarray:
        """The trainable parameters, a flat view (weights, then biases unless frozen)."""
        return self.params[: self.n_trainable]

    @property
    def trainable_grads(self) -> np.ndarray:
        """Gradients of the trainable parameters, in the layout of ``trainable``."""
        return self.grads[: self.n_trainable]

    def initialize(
        self,
        weight_init: Initializer,
        rng: np.random.Generator,
        bias_init: BiasInitializer | None = None,
    ) -> Network:
        """Fill the weights and the biases (``bias_init``, else the weight initializer's own, such as
        ``mean_field``'s N(0, sigma_b2), else zeros) from initializers; returns self."""
        for W, value in zip(self.weights, weight_init(self.weight_shapes, rng, self.dtype)):
            W[...] = value
        if self.bias_shapes:
            bias_init = bias_init or weight_init.biases or get_bias_initializer("zeros")
            for b, value in zip(self.biases, bias_init(self.bias_shapes, rng, self.dtype)):
                b[...] = value
        return self

    def copy(self, dtype: type | np.dtype | None = None) -> Network:
        """An independent network with the same parameters (cast to ``dtype`` if given)."""
        clone = Network(
            self.sizes, self.hidden_activation, self.output_activation,
            bias=self.bias_mode, train_bias=self.train_bias, dtype=dtype or self.dtype,
            hidden_derivative=self.hidden_derivative,
        )
        clone.params[...] = self.params
        return clone

    def parameter_segments(self) -> list[tuple[str, int, int]]:
        """``(name, start, size)`` of every parameter tensor in the flat vector: ``W/l01``, ``b/l01``..."""
        L = self.n_layers
        segments = [(f"W/{leaf(k + 1, L)}", int(self.weight_offsets[k]), W.size) for k, W in enumerate(self.weights)]
        start = self.n_weights
        for k, b in enumerate(self.biases):
            if b is not None:
                segments.append((f"b/{leaf(k + 1, L)}", start, b.size))
                start += b.size
        return segments

    # ---------------------------------------------------------------- passes
    def buffers(self, n: int) -> PassBuffers:
        """The arrays a training pass over ``n`` samples writes into, allocated again only when ``n``
        changes (sklearn's way)."""
        if self._buffers is None or self._buffers.rows != n:
            self._buffers = PassBuffers(n, self.sizes[1:], self.dtype)
        return self._buffers

    def layer_values(self, X: np.ndarray, buffers: PassBuffers | None = None) -> LayerValues:
        """Every layer's input, Z and A for ``X``: fresh arrays, or the given buffers; the cache and the
        gradients are left untouched (the theory's Jacobian and length map read it)."""
        inputs, Zs, As = [], [], []
        A = X
        for k, (W, b, activation) in enumerate(zip(self.weights, self.biases, self.activations)):
            inputs.append(A)
            Z = np.matmul(A, W, out=buffers.Z[k] if buffers else None)
            if b is not None:
                Z += b
            A = activation.forward(Z, out=buffers.A[k] if buffers else None)
            Zs.append(Z)
            As.append(A)
        return LayerValues(inputs, Zs, As)

    def _forward_kept(self, X: np.ndarray) -> None:
        inputs, Zs, As = self.layer_values(X, self.buffers(len(X)))
        self.cache = {"inputs": inputs, "Z": Zs, "A": As, "dA_dZ": [None] * self.n_layers}

    def forward(self, X: np.ndarray, *, keep: bool = True) -> np.ndarray:
        """Outputs, shape ``(n_samples, sizes[-1])``, for ``X`` of shape ``(n_samples, sizes[0])``.

        ``keep`` caches every layer's input, Z and A for ``backward`` and the diagnostics; the cache
        lives in the network's buffers, which the next pass over as many samples rewrites.
        """
        if not keep:
            return self.layer_values(X).A[-1]
        self._forward_kept(X)
        return self.cache["A"][-1].copy()

    def output_delta(self, loss: Loss, Y: np.ndarray) -> tuple[float, np.ndarray]:
        """Loss value and dL/dZ of the output layer, from the cached forward pass (see losses.py)."""
        return loss.value_and_delta(self.cache["Z"][-1], self.cache["A"][-1], Y, self.output_activation)

    def backward(self, dL_dZ: np.ndarray) -> None:
        """Fill ``grads`` (and ``unit_errors``) from the output layer's dL/dZ, shape ``(n, sizes[-1])``.

        The hidden layers' f'(Z) it multiplies by stay in ``cache["dA_dZ"]`` (the diagnostics read them).
        """
        inputs, Zs, As, derivatives = self.cache["inputs"], self.cache["Z"], self.cache["A"], self.cache["dA_dZ"]
        buffers = self.buffers(len(inputs[0]))
        shared = self.bias_mode == "shared"
        for k in range(self.n_layers - 1, -1, -1):
            np.matmul(inputs[k].T, dL_dZ, out=self.dL_dW[k])  # dL/dW = A_prev^T dL/dZ
            np.add.reduce(dL_dZ, axis=0, out=self.unit_errors[k])  # dL/db = dL/dZ summed over the batch
            if shared:
                self.dL_db[k][0] = self.unit_errors[k].sum()
            if k:
                dL_dZ = np.matmul(dL_dZ, self.weights[k].T, out=buffers.dL_dA[k - 1])  # dL/dA of layer k-1
                activation = self.activations[k - 1]
                if self.hidden_derivative == "exact" and not activation.constant_derivative:
                    derivatives[k - 1] = activation.derivative(Zs[k - 1], As[k - 1], out=buffers.dA_dZ[k - 1])
                    dL_dZ *= derivatives[k - 1]

    def loss_and_grad(self, X: np.ndarray, Y: np.ndarray, loss: Loss) -> float:
        """One forward and backward pass: returns the loss and leaves dL/dparams in ``grads``."""
        self._forward_kept(X)
        value, dL_dZ = self.output_delta(loss, Y)
        self.backward(dL_dZ)
        return value

    def end_step(self) -> None:
        """After an update (a ``BlockNetwork``'s batch normalization updates its running statistics)."""

    def block_record(self) -> dict[str, float]:
        """Diagnostics of blocks and normalization: none in a plain net."""
        return {}

    def evaluate(self, X: np.ndarray, Y: np.ndarray, loss: Loss) -> tuple[float, np.ndarray]:
        """Loss and outputs on ``(X, Y)``, leaving the cache and the gradients untouched."""
        _, Zs, As = self.layer_values(X)
        return loss.value_at(Zs[-1], As[-1], Y, self.output_activation), As[-1]

    def loss(self, X: np.ndarray, Y: np.ndarray, loss: Loss) -> float:
        """The loss on ``(X, Y)``, leaving the cache and the gradients untouched."""
        return self.evaluate(X, Y, loss)[0]

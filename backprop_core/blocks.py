"""Networks of blocks: dense layers with normalization, and residual blocks ``h + alpha * F(h)``.

A ``BlockNetwork`` has the dense layers of a ``Network`` (``sizes``, numbered from the input, with the
same flat parameter layout: every ``W``, then every ``b``) and, after them in the same flat vector,
the normalizations' ``gamma`` and ``beta`` and the blocks' trainable ``alpha``; so every optimizer,
the clipping, the gradient check and the divergence guard see one vector as before.

Each dense layer ``k`` is one of three kinds:

- ``post`` (a plain net's hidden layers, the residual net's stem, a post-activation branch):
  ``Z = u W + b``, ``N = norm(Z)``, ``A = f(N)``; it hands on ``A``;
- ``pre`` (a pre-activation branch, He et al. 2016b, Yang & Schoenholz 2017):
  ``N = norm(u)``, ``A = f(N)``, ``Z = A W + b``; it hands on ``Z``;
- ``out`` (the last layer): ``Z = u W + b``, ``A = f_out(Z)``, never normalized.

A residual net is a stem (``post``), ``blocks`` residual blocks of ``layers_per_block`` layers each,
``h <- h + alpha * F(h)``, and the output layer reading the stream ``h``.  Without ``residual`` the
hidden layers are a plain stack of ``post`` layers (a ``Network`` when ``norm="none"``: use that one).

Per layer the cache holds what the diagnostics read as for a ``Network``: ``inputs`` (the matmul's
input), ``Z`` (the activation's input ``N``), ``A`` and ``dA_dZ`` (``f'(N)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .activations import Activation, get_activation
from .keys import layer_key, layer_leaf
from .initializers import BiasInitializer, Initializer
from .losses import Loss
from .network import BIAS_MODES, LayerValues, Network, PassBuffers, flat_views
from .normalization import NORMS, NormStats, normalize, normalize_backward

__all__ = ["BlockNetwork", "ORDERS", "BLOCK_DIAGNOSTICS"]

ORDERS = ("pre", "post")
BLOCK_DIAGNOSTICS = (
    "gamma_grad_norm",  # ||dL/dgamma|| of a normalized dense layer (numbered as the dense layers)
    "beta_grad_norm",  # ||dL/dbeta||
    "branch_ratio",  # ||alpha F(h)|| / ||h|| of a residual block (numbered b01.. from the input)
    "stream_length",  # mean of h^2 over the batch and the units after a block: the forward length q
    "alpha",  # a block's trainable alpha
)


def _activation(a: str | Activation) -> Activation:
    return a if isinstance(a, Activation) else get_activation(a)


class BlockNetwork:
    """A dense network with normalization (``norm``: ``none``, ``batch`` or ``layer``) after each hidden
    dense layer, optionally residual.

    Parameters
    ----------
    sizes : dense layer widths from input to output; a residual net's hidden widths are all equal, and
        ``len(sizes) - 3`` (its layers between the stem and the output layer) a multiple of ``layers_per_block``
    residual, layers_per_block, order : residual blocks ``h + alpha * F(h)`` of 1 or 2 dense layers,
        ``pre`` (norm -> act -> dense) or ``post`` (dense -> norm -> act)
    alpha, train_alpha : the branch's scale (1, 1/sqrt(blocks), ...); trainable (one per block) or fixed
    affine : the normalization's trainable gamma (init 1) and beta (init 0)
    momentum, eps : batch normalization's running statistics and the variance's floor
    """

    hidden_derivative = "exact"
    train_bias = True

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Activation = "relu",
        output_activation: str | Activation = "identity",
        *,
        norm: str = "none",
        affine: bool = True,
        residual: bool = False,
        layers_per_block: int = 1,
        order: str = "pre",
        alpha: float = 1.0,
        train_alpha: bool = False,
        momentum: float = 0.1,
        eps: float = 1e-5,
        bias: str = "per_unit",
        dtype: type | np.dtype = np.float64,
    ) -> None:
        self.sizes = sizes = tuple(int(n) for n in sizes)
        self.dtype = np.dtype(dtype)
        self._check(norm, residual, layers_per_block, order, alpha, momentum, eps, bias)
        self.norm, self.affine, self.residual = norm, bool(affine), bool(residual)
        self.layers_per_block, self.order = int(layers_per_block), order
        self.alpha_value, self.train_alpha = float(alpha), bool(train_alpha)
        self.momentum, self.eps, self.bias_mode = float(momentum), float(eps), bias
        self.hidden_activation, self.output_activation = _activation(activation), _activation(output_activation)
        L = self.n_layers = len(sizes) - 1
        self.activations = [self.hidden_activation] * (L - 1) + [self.output_activation]
        if residual:
            self.kinds = ["post"] + [order] * (L - 2) + ["out"]
            self.blocks = [list(range(1 + b * layers_per_block, 1 + (b + 1) * layers_per_block))
                           for b in range((L - 2) // layers_per_block)]
        else:
            self.kinds, self.blocks = ["post"] * (L - 1) + ["out"], []
        self.normalized = [k for k in range(L) if norm != "none" and self.kinds[k] != "out"]
        self.norm_widths = {k: sizes[k] if self.kinds[k] == "pre" else sizes[k + 1] for k in self.normalized}
        self._lay_out_parameters()
        self.running_mean = {k: np.zeros((1, self.norm_widths[k]), self.dtype) for k in self.normalized if norm == "batch"}
        self.running_var = {k: np.ones((1, self.norm_widths[k]), self.dtype) for k in self.running_mean}
        self.cache: dict[str, list] = {"inputs": [], "Z": [], "A": [], "dA_dZ": []}
        self._buffers: PassBuffers | None = None

    def _check(self, norm, residual, layers_per_block, order, alpha, momentum, eps, bias) -> None:
        sizes = self.sizes
        if len(sizes) < 3 or min(sizes) < 1:
            raise ValueError(f"sizes={list(sizes)}: a block network needs a hidden layer, every width >= 1")
        if norm not in NORMS:
            raise ValueError(f"norm={norm!r} is unknown; valid: {', '.join(NORMS)}")
        if order not in ORDERS:
            raise ValueError(f"order={order!r} is unknown; valid: {', '.join(ORDERS)}")
        if bias not in BIAS_MODES:
            raise ValueError(f"bias={bias!r} is unknown; valid modes: {', '.join(BIAS_MODES)}")
        if self.dtype not in (np.float64, np.float32):
            raise ValueError(f"dtype={self.dtype} is not supported; use float64 or float32")
        if not (0 <= momentum <= 1 and eps > 0 and math.isfinite(alpha)):
            raise ValueError(f"momentum={momentum} must be in [0, 1], eps={eps} > 0, alpha={alpha} finite")
        if residual:
            if layers_per_block not in (1, 2):
                raise ValueError(f"layers_per_block={layers_per_block}: must be 1 or 2")
            if len(set(sizes[1:-1])) != 1 or len(sizes) < 3 + layers_per_block \
                    or (len(sizes) - 3) % layers_per_block:
                raise ValueError(f"sizes={list(sizes)}: a residual net has one hidden width and a stem, "
                                 f"whole blocks of {layers_per_block} layer(s), and an output layer")

    def _lay_out_parameters(self) -> None:
        """A ``Network``'s flat layout of the dense layers, then gamma and beta of each normalized layer,
        then each block's trainable alpha."""
        norm_shapes = [(self.norm_widths[k],) for k in self.normalized for _ in range(2)] if self.affine else []
        alpha_shapes = [(1,)] * len(self.blocks) if self.train_alpha else []
        Network._lay_out_parameters(self, extra=sum(s[0] for s in norm_shapes + alpha_shapes))
        start = self.n_dense_params
        pairs, grad_pairs = flat_views(self.params, start, norm_shapes), flat_views(self.grads, start, norm_shapes)
        self.gamma = dict(zip(self.normalized, pairs[0::2]))
        self.beta = dict(zip(self.normalized, pairs[1::2]))
        self.dL_dgamma = dict(zip(self.normalized, grad_pairs[0::2]))
        self.dL_dbeta = dict(zip(self.normalized, grad_pairs[1::2]))
        start += sum(s[0] for s in norm_shapes)
        self.alpha = flat_views(self.params, start, alpha_shapes)  # one (1,) view per block, when trainable
        self.dL_dalpha = flat_views(self.grads, start, alpha_shapes)

    def __repr__(self) -> str:
        shape = (f", residual blocks={len(self.blocks)} x {self.layers_per_block} ({self.order}), "
                 f"alpha={'trainable' if self.train_alpha else ''}{self.alpha_value:g}") if self.residual else ""
        return (f"BlockNetwork(sizes={list(self.sizes)}, activation={self.hidden_activation!r}, "
                f"norm={self.norm!r}{shape}, dtype={self.dtype.name})")

    # ---------------------------------------------------------------- parameters
    @property
    def trainable(self) -> np.ndarray:
        return self.params

    @property
    def trainable_grads(self) -> np.ndarray:
        return self.grads

    def parameter_segments(self) -> list[tuple[str, int, int]]:
        """``(name, start, size)`` of every parameter tensor in the flat vector: ``W/l01``, ``b/l01``,
        ``gamma/l02``, ``beta/l02``, ``alpha/b01``."""
        segments, start, L = Network.parameter_segments(self), self.n_dense_params, self.n_layers
        for k in self.gamma:
            segments += [(f"gamma/{layer_leaf(k + 1, L)}", start, self.gamma[k].size),
                         (f"beta/{layer_leaf(k + 1, L)}", start + self.gamma[k].size, self.beta[k].size)]
            start += 2 * self.gamma[k].size
        segments += [(f"alpha/{layer_leaf(b + 1, len(self.blocks), 'b')}", start + b, 1) for b in range(len(self.alpha))]
        return segments

    def initialize(self, weight_init: Initializer, rng: np.random.Generator,
                   bias_init: BiasInitializer | None = None) -> BlockNetwork:
        """Weights and biases as a ``Network``'s; gamma 1, beta 0, a trainable alpha its initial value."""
        Network.initialize(self, weight_init, rng, bias_init)
        for k in self.gamma:
            self.gamma[k][...], self.beta[k][...] = 1, 0
        for a in self.alpha:
            a[...] = self.alpha_value
        return self

    def copy(self, dtype: type | np.dtype | None = None) -> BlockNetwork:
        clone = BlockNetwork(self.sizes, self.hidden_activation, self.output_activation, norm=self.norm,
                             affine=self.affine, residual=self.residual, layers_per_block=self.layers_per_block,
                             order=self.order, alpha=self.alpha_value, train_alpha=self.train_alpha,
                             momentum=self.momentum, eps=self.eps, bias=self.bias_mode, dtype=dtype or self.dtype)
        clone.params[...] = self.params
        for k in self.running_mean:
            clone.running_mean[k][...], clone.running_var[k][...] = self.running_mean[k], self.running_var[k]
        return clone

    def block_alpha(self, b: int) -> float:
        return float(self.alpha[b][0]) if self.train_alpha else self.alpha_value

    # ---------------------------------------------------------------- passes
    def buffers(self, n: int) -> PassBuffers:
        """Every layer's activation input, A, f' and dL/dA for ``n`` samples (the diagnostics read them)."""
        if self._buffers is None or self._buffers.rows != n:
            widths = [self.sizes[k] if kind == "pre" else self.sizes[k + 1] for k, kind in enumerate(self.kinds)]
            self._buffers = PassBuffers(n, widths, self.dtype)
        return self._buffers

    def _norm(self, k: int, z: np.ndarray, training: bool, in_place: bool = False) -> tuple[np.ndarray, NormStats | None]:
        """Layer ``k``'s normalization of ``z`` (then gamma, beta): its output and, in training, its stats
        (``in_place``: z, not needed again, becomes x_hat)."""
        if k not in self.norm_widths:
            return z, None
        if self.norm == "batch" and not training:
            stats = NormStats((z - self.running_mean[k]) / np.sqrt(self.running_var[k] + self.eps), None, None, None)
        else:
            if self.norm == "batch" and len(z) < 2:
                raise ValueError("batch normalization needs at least 2 samples per batch in training")
            stats = normalize(z, self.norm, self.eps, in_place=in_place)
        if not self.affine:
            return stats.x_hat, stats
        out = np.multiply(stats.x_hat, self.gamma[k])
        out += self.beta[k]
        return out, stats

    def _dense(self, k: int, u: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        Z = np.matmul(u, self.weights[k], out=out)
        if self.biases[k] is not None:
            Z += self.biases[k]
        return Z

    def _layer(self, k: int, u: np.ndarray, c: dict, training: bool, buffers: PassBuffers | None) -> np.ndarray:
        """Layer ``k`` on its input ``u``; what it computes goes into the cache ``c``; returns its output."""
        activation, kind = self.activations[k], self.kinds[k]
        A_out = buffers.A[k] if buffers else None
        if kind == "pre":
            N, stats = self._norm(k, u, training)
            A = activation.forward(N, out=A_out)
            Z = self._dense(k, A)
            inputs, result = A, Z
        else:
            Z = self._dense(k, u, out=buffers.Z[k] if buffers and k not in self.norm_widths else None)
            N, stats = self._norm(k, Z, training, in_place=True)  # the dense output is not needed again
            A = activation.forward(N, out=A_out)
            inputs, result = u, A
        for name, value in (("inputs", inputs), ("Z", N), ("A", A), ("stats", stats)):
            c[name].append(value)
        return result

    def _pass(self, X: np.ndarray, training: bool, buffers: PassBuffers | None = None) -> dict:
        """A forward pass; returns its cache (``inputs``, ``Z``, ``A``, ``stats`` per layer,
        ``streams`` and ``branches`` per block)."""
        c: dict[str, list] = {name: [] for name in ("inputs", "Z", "A", "stats", "streams", "branches")}
        h = self._layer(0, X, c, training, buffers)
        if not self.residual:
            for k in range(1, self.n_layers):
                h = self._layer(k, h, c, training, buffers)
            return c
        for b, layers in enumerate(self.blocks):
            F = h
            for k in layers:
                F = self._layer(k, F, c, training, buffers)
            c["streams"].append(h)
            c["branches"].append(F)
            h = h + self.block_alpha(b) * F
        c["streams"].append(h)  # the stream after the last block: the output layer's input
        self._layer(self.n_layers - 1, h, c, training, buffers)
        return c

    def layer_values(self, X: np.ndarray) -> LayerValues:
        """Every layer's matmul input, activation input and activation, in training mode (batch statistics);
        the cache and the running statistics are left untouched."""
        c = self._pass(X, training=True)
        return LayerValues(c["inputs"], c["Z"], c["A"])

    def forward(self, X: np.ndarray, *, keep: bool = True) -> np.ndarray:
        """Outputs in training mode (batch statistics); ``keep`` caches the pass for ``backward``."""
        if not keep:
            return self._pass(X, training=True)["A"][-1]
        self._forward_kept(X)
        return self.cache["A"][-1].copy()

    def _forward_kept(self, X: np.ndarray) -> None:
        self.cache = self._pass(X, training=True, buffers=self.buffers(len(X)))
        self.cache["dA_dZ"] = [None] * self.n_layers

    def output_delta(self, loss: Loss, Y: np.ndarray) -> tuple[float, np.ndarray]:
        return loss.value_and_delta(self.cache["Z"][-1], self.cache["A"][-1], Y, self.output_activation)

    def _derivative(self, k: int, g: np.ndarray, buffers: PassBuffers) -> np.ndarray:
        """``g`` (dL/dA of layer k) times f'(N), kept in the cache for the diagnostics."""
        activation = self.activations[k]
        if activation.constant_derivative:
            return g
        c = self.cache
        c["dA_dZ"][k] = activation.derivative(c["Z"][k], c["A"][k], out=buffers.dA_dZ[k])
        return g * c["dA_dZ"][k]

    def _norm_backward(self, k: int, g: np.ndarray) -> np.ndarray:
        """dL/d(the norm's input) from ``g`` = dL/d(its output); fills dL/dgamma and dL/dbeta."""
        stats = self.cache["stats"][k]
        if stats is None:
            return g
        if self.affine:
            return normalize_backward(g, stats, self.norm, self.gamma[k], self.dL_dgamma[k], self.dL_dbeta[k])
        return normalize_backward(g, stats, self.norm)

    def _dense_backward(self, k: int, dZ: np.ndarray, need_input: bool) -> np.ndarray | None:
        np.matmul(self.cache["inputs"][k].T, dZ, out=self.dL_dW[k])
        np.add.reduce(dZ, axis=0, out=self.unit_errors[k])
        if self.bias_mode == "shared":
            self.dL_db[k][0] = self.unit_errors[k].sum()
        return dZ @ self.weights[k].T if need_input else None

    def _layer_backward(self, k: int, g: np.ndarray, buffers: PassBuffers, need_input: bool = True):
        """From dL/d(layer k's output) to dL/d(its input)."""
        if self.kinds[k] == "pre":  # output Z = f(norm(u)) W + b
            dA = self._dense_backward(k, g, need_input=True)
            return self._norm_backward(k, self._derivative(k, dA, buffers))
        dZ = self._norm_backward(k, self._derivative(k, g, buffers))  # output A = f(norm(u W + b))
        return self._dense_backward(k, dZ, need_input)

    def backward(self, dL_dZ: np.ndarray) -> None:
        """Fill ``grads`` from the output layer's dL/dZ."""
        c, L = self.cache, self.n_layers
        buffers = self.buffers(len(c["inputs"][0]))
        g = self._dense_backward(L - 1, dL_dZ, need_input=True)
        if not self.residual:
            for k in range(L - 2, -1, -1):
                g = self._layer_backward(k, g, buffers, need_input=k > 0)
            return
        for b in range(len(self.blocks) - 1, -1, -1):  # dL/dh, then through h + alpha F(h)
            if self.train_alpha:
                self.dL_dalpha[b][0] = np.vdot(g, c["branches"][b])
            dF = self.block_alpha(b) * g
            for k in reversed(self.blocks[b]):
                dF = self._layer_backward(k, dF, buffers)
            g = g + dF
        self._layer_backward(0, g, buffers, need_input=False)

    def loss_and_grad(self, X: np.ndarray, Y: np.ndarray, loss: Loss) -> float:
        """One forward and backward pass in training mode: the loss; dL/dparams in ``grads``."""
        self._forward_kept(X)
        value, dL_dZ = self.output_delta(loss, Y)
        self.backward(dL_dZ)
        return value

    def end_step(self) -> None:
        """After an update: batch normalization's running statistics take in the last training pass's."""
        rows = len(self.cache["inputs"][0]) if self.cache["inputs"] else 0
        for k in self.running_mean:
            stats, m = self.cache["stats"][k], self.momentum
            self.running_mean[k] *= 1 - m
            self.running_mean[k] += m * stats.mean
            self.running_var[k] *= 1 - m
            self.running_var[k] += m * stats.var * (rows / (rows - 1))

    def evaluate(self, X: np.ndarray, Y: np.ndarray, loss: Loss) -> tuple[float, np.ndarray]:
        """Loss and outputs in evaluation mode (batch normalization with its running statistics)."""
        c = self._pass(X, training=False)
        return loss.value_at(c["Z"][-1], c["A"][-1], Y, self.output_activation), c["A"][-1]

    def loss(self, X: np.ndarray, Y: np.ndarray, loss: Loss) -> float:
        """The training objective on ``(X, Y)`` (batch statistics), leaving the cache untouched: the
        gradient check differentiates this."""
        c = self._pass(X, training=True)
        return loss.value_at(c["Z"][-1], c["A"][-1], Y, self.output_activation)

    # ---------------------------------------------------------------- diagnostics
    def block_record(self) -> dict[str, float]:
        """The last training pass's block diagnostics (``BLOCK_DIAGNOSTICS``), keyed as the layers' are."""
        c, L, B, record = self.cache, self.n_layers, len(self.blocks), {}
        for k in self.gamma:
            record[layer_key("gamma_grad_norm", k + 1, L)] = float(np.linalg.norm(self.dL_dgamma[k]))
            record[layer_key("beta_grad_norm", k + 1, L)] = float(np.linalg.norm(self.dL_dbeta[k]))
        for b in range(B):
            h, F = c["streams"][b], c["branches"][b]
            h_norm = float(np.linalg.norm(h))
            record[layer_key("branch_ratio", b + 1, B, "b")] = \
                abs(self.block_alpha(b)) * float(np.linalg.norm(F)) / h_norm if h_norm > 0 else math.nan
            after = c["streams"][b + 1]
            record[layer_key("stream_length", b + 1, B, "b")] = float(np.vdot(after, after)) / after.size
            if self.train_alpha:
                record[layer_key("alpha", b + 1, B, "b")] = self.block_alpha(b)
        return record


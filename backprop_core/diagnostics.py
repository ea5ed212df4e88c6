"""Per-layer diagnostics from the forward and backward pass just made (no second pass).

Every diagnostic is an array of length L (one entry per weight layer, input side first);
``LayerDiagnostics`` measures them all at once, with buffers kept for a whole fit.
"""

from __future__ import annotations

import numpy as np

from .keys import layer_key, layer_leaf
from .network import Network

__all__ = ["LayerDiagnostics", "layer_diagnostics", "layer_key", "layer_leaf", "diagnostic_keys", "sum_of_squares", "DIAGNOSTICS"]

DIAGNOSTICS = (
    "grad_norm",  # ||dL/dW||_F
    "delta_norm",  # ||dL/dZ summed over the batch||: Nielsen's "speed of learning", for every bias option
    "bias_grad_norm",  # ||dL/db||, only where the layer has a bias (per unit: = delta_norm; shared: |sum|)
    "weight_norm",  # ||W||_F
    "update_ratio",  # ||update of W|| / ||W||  (Karpathy: about 1e-3 is healthy)
    "act_mean",  # mean of A over batch and units
    "act_std",  # std of A over batch and units (centred: exact for a constant layer)
    "saturation",  # fraction of entries where |f'(z)| < SATURATION_EPS * max |f'| (one rule for all)
    "dead_fraction",  # fraction of units saturated on every sample (only where f' is 0 on a region: ReLU)
)


def diagnostic_keys(net: Network) -> dict[str, list[tuple[int, str]]]:
    """For each diagnostic, the ``(layer index, key)`` pairs where it is defined: ``bias_grad_norm``
    only with biases, ``dead_fraction`` only after an activation whose derivative is 0 on a region."""
    def defined(name: str, k: int) -> bool:
        if name == "bias_grad_norm":
            return net.bias_mode != "none"
        if name == "dead_fraction":
            return net.activations[k].has_dead_region
        return True

    return {name: [(k, layer_key(name, k + 1, net.n_layers)) for k in range(net.n_layers) if defined(name, k)]
            for name in DIAGNOSTICS}


def sum_of_squares(a: np.ndarray) -> float:
    """sum a^2 by one BLAS dot, accumulated in float64 (float32 squares overflow from 1.8e19 on)."""
    if a.dtype != np.float64:
        a = a.astype(np.float64)
    return float(np.vdot(a, a))


class LayerDiagnostics:
    """The diagnostics of a network's last training pass, measured with buffers allocated once.

    ``measure`` fills one ``(len(DIAGNOSTICS), L)`` array: every norm is a single squaring of the
    flat parameter, gradient or update vector and one ``np.add.reduceat`` over its layer segments;
    the activation statistics are a few passes over the network's flat buffers (every layer at
    once) and one ``reduceat`` each; the saturation reads the f'(Z) backpropagation computed.
    """

    DOT_FROM = 4096  # mean entries per layer from which a dot per layer wins (even at ~3000 here, 4 layers)

    def __init__(self, net: Network) -> None:
        self.net = net
        L = net.n_layers
        self.values = np.full((len(DIAGNOSTICS), L), np.nan)
        self.rows = dict(zip(DIAGNOSTICS, self.values))  # views: rows["grad_norm"] is values[0]
        # (keys, their flat positions in ``values``) of a record with an update, and of one without
        defined = [(name, key, i * L + k) for i, (name, pairs) in enumerate(diagnostic_keys(net).items())
                   for k, key in pairs]

        def layout(names) -> tuple[list[str], np.ndarray]:
            chosen = [(key, position) for name, key, position in defined if name in names]
            return [key for key, _ in chosen], np.array([position for _, position in chosen], np.intp)

        self._layout = {True: layout(DIAGNOSTICS), False: layout(set(DIAGNOSTICS) - {"update_ratio"})}
        # the flat vectors' segments: each layer's W, then each layer's b (parameters and gradients share it)
        bias_starts = net.n_weights + np.cumsum([0] + [shape[0] for shape in net.bias_shapes])[:-1]
        self._starts = np.concatenate([net.weight_offsets, bias_starts]).astype(np.intp)
        self._squares = np.empty(net.n_params)  # float64 whatever the net's dtype
        self._scratch_rows = -1  # the batch size the scratch arrays below are for
        self._scratch, self._mask, self._thresholds = np.empty(0), np.empty(0, bool), np.empty(0)

    def _segment_norms(self, flat: np.ndarray, n: int) -> np.ndarray:
        """Norms of the first ``n`` segments of ``flat`` (laid out as the network's parameters): two
        calls for every layer at once, or, for layers large enough that reading the entries three
        times costs more than a call per layer, one BLAS dot per layer."""
        starts = self._starts[:n]
        if flat.size >= self.DOT_FROM * n:
            return np.sqrt([sum_of_squares(flat[a:b]) for a, b in zip(starts, [*starts[1:], flat.size])])
        squares = np.square(flat, out=self._squares[:flat.size], dtype=np.float64)
        return np.sqrt(np.add.reduceat(squares, starts))

    def measure(self, updates: np.ndarray | None = None) -> np.ndarray:
        """The ``(len(DIAGNOSTICS), L)`` array (NaN where a layer has none), rewritten at every call.

        ``updates`` (the flat update about to be applied to ``net.trainable``) adds ``update_ratio``.
        """
        net, rows, L = self.net, self.rows, self.net.n_layers
        has_bias = net.bias_mode != "none"
        grad_norms = self._segment_norms(net.grads[:net.n_dense_params], 2 * L if has_bias else L)
        rows["grad_norm"][:] = grad_norms[:L]
        if has_bias:
            rows["bias_grad_norm"][:] = grad_norms[L:]
        rows["delta_norm"][:] = grad_norms[L:] if net.bias_mode == "per_unit" else \
            np.sqrt([sum_of_squares(errors) for errors in net.unit_errors])
        weight_norm = rows["weight_norm"]
        weight_norm[:] = self._segment_norms(net.params[:net.n_weights], L)
        rows["update_ratio"].fill(np.nan)
        if updates is not None:
            update_norm = self._segment_norms(updates[:net.n_weights], L)
            np.divide(update_norm, weight_norm, out=rows["update_ratio"], where=weight_norm > 0)
        self._activation_stats()
        return self.values

    def _activation_stats(self) -> None:
        """Mean, std, saturation and dead fraction of every layer's activations: each a few passes over
        the flat buffers of the last pass and one ``np.add.reduceat`` at the layers' starts."""
        net, rows, cache = self.net, self.rows, self.net.cache
        buffers = net.buffers(len(cache["A"][0]))
        if self._scratch_rows != buffers.rows:  # scratch for this batch size, and each entry's saturation threshold
            self._scratch_rows = buffers.rows
            self._scratch = np.empty(buffers.flat["A"].size)
            self._mask = np.empty(buffers.flat["A"].size, bool)
            self._thresholds = np.repeat([a.saturation_threshold for a in net.activations], buffers.sizes)
        starts, sizes = buffers.starts, buffers.sizes
        mean = np.add.reduceat(buffers.flat["A"], starts, dtype=np.float64) / sizes
        # two passes, centred: E[a^2] - E[a]^2 cancels (a constant layer would read 1e-9, not 0)
        centered = np.subtract(buffers.flat["A"], np.repeat(mean, sizes), out=self._scratch)
        rows["act_mean"][:] = mean
        rows["act_std"][:] = np.sqrt(np.add.reduceat(np.square(centered, out=centered), starts) / sizes)
        # the activations' one saturation rule (|f'(z)| below Activation.saturation_threshold), on the f'
        # backpropagation computed; the others (the output layer, a "one" pass) are computed here
        for k, (activation, known) in enumerate(zip(net.activations, cache["dA_dZ"])):
            if known is None:
                activation.derivative(cache["Z"][k], cache["A"][k], out=buffers.dA_dZ[k])
        magnitude = np.abs(buffers.flat["dA_dZ"], out=self._scratch)
        saturated = np.less(magnitude, self._thresholds, out=self._mask)
        rows["saturation"][:] = np.add.reduceat(saturated, starts, dtype=np.intp) / sizes
        for k, activation in enumerate(net.activations):
            if activation.has_dead_region:  # a unit saturated on every sample
                layer = saturated[starts[k]:starts[k] + sizes[k]].reshape(buffers.dA_dZ[k].shape)
                rows["dead_fraction"][k] = np.count_nonzero(layer.all(axis=0)) / layer.shape[1]

    def record(self, updates: np.ndarray | None = None) -> dict[str, float]:
        """``{key: value}`` of every defined diagnostic (the keys of ``diagnostic_keys``, in its order;
        no ``update_ratio`` without ``updates``)."""
        keys, positions = self._layout[updates is not None]
        record = dict(zip(keys, self.measure(updates).ravel()[positions].tolist()))
        record.update(self.net.block_record())  # a plain net's is empty
        return record


def layer_diagnostics(net: Network, updates: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Diagnostics of the last ``loss_and_grad`` pass, each an array of shape ``(L,)`` (NaN where
    ``diagnostic_keys`` says a layer has none).

    ``updates`` (the flat update about to be applied to ``net.trainable``) adds ``update_ratio``.
    ``fit`` keeps one ``LayerDiagnostics`` for the whole run instead.
    """
    values = LayerDiagnostics(net).measure(updates)
    return dict(zip(DIAGNOSTICS, values))

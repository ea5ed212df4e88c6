"""Block networks against PyTorch's autograd in float64 (where torch is installed: it is no dependency)."""

import itertools

import numpy as np
import pytest

from backprop_core import BlockNetwork, get_initializer, get_loss
from backprop_core.initializers import get_bias_initializer

torch = pytest.importorskip("torch")
F = torch.nn.functional
ACT = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


def torch_loss(net: BlockNetwork, X: np.ndarray, Y: np.ndarray, loss: str):
    """The same net written with torch's own layers, on leaf tensors sharing the engine's values."""
    leaves = [torch.tensor(p, requires_grad=True) for p in
              [*net.weights, *net.biases, *(t for k in net.gamma for t in (net.gamma[k], net.beta[k])), *net.alpha]]
    L = net.n_layers
    W, b = leaves[:L], leaves[L:2 * L]
    affine = iter(leaves[2 * L:2 * L + 2 * len(net.gamma)])
    gamma_beta = {k: (next(affine), next(affine)) for k in net.gamma}
    alphas = leaves[2 * L + 2 * len(net.gamma):]
    act = ACT[net.hidden_activation.name]

    def norm(k, x):
        if k not in net.norm_widths:
            return x
        g, beta = gamma_beta[k]
        if net.norm == "batch":
            return F.batch_norm(x, None, None, g, beta, training=True, eps=net.eps)
        return F.layer_norm(x, (x.shape[1],), g, beta, eps=net.eps)

    def layer(k, u):
        if net.kinds[k] == "pre":
            return act(norm(k, u)) @ W[k] + b[k]
        return act(norm(k, u @ W[k] + b[k]))

    h = layer(0, torch.tensor(X))
    if net.residual:
        for i, block in enumerate(net.blocks):
            F_h = h
            for k in block:
                F_h = layer(k, F_h)
            h = h + (alphas[i] if net.train_alpha else net.alpha_value) * F_h
    else:
        for k in range(1, L - 1):
            h = layer(k, h)
    out = h @ W[-1] + b[-1]
    Yt = torch.tensor(Y)
    value = 0.5 * ((out - Yt) ** 2).sum(1).mean() if loss == "mse" else -(Yt * torch.log_softmax(out, 1)).sum(1).mean()
    value.backward()
    return value.item(), np.concatenate([leaf.grad.numpy().ravel() for leaf in leaves])


SHAPES = [("batch", False, 1, "post", False), ("layer", False, 1, "post", False)] + [
    (norm, True, lpb, order, alpha) for norm, lpb, order, alpha in
    itertools.product(("none", "batch", "layer"), (1, 2), ("pre", "post"), (False, True))]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_every_block_gradient_matches_pytorch_to_1e_10(shape, activation, loss):
    norm, residual, lpb, order, train_alpha = shape
    rng = np.random.default_rng(7)
    output = "softmax" if loss == "cross_entropy" else "identity"
    net = BlockNetwork([5, 8] + [8] * (3 * lpb) + [4], activation, output, norm=norm, residual=residual,
                       layers_per_block=lpb, order=order, alpha=0.6, train_alpha=train_alpha)
    net.initialize(get_initializer("he_normal"), rng, get_bias_initializer("normal", std=0.1))
    net.params += rng.normal(0, 0.1, net.n_params)
    X = rng.normal(size=(16, 5))
    Y = np.eye(4)[rng.integers(0, 4, 16)] if loss == "cross_entropy" else rng.normal(size=(16, 4))
    value = net.loss_and_grad(X, Y, get_loss(loss))
    expected_value, expected = torch_loss(net, X, Y, loss)
    assert value == pytest.approx(expected_value, rel=1e-13)
    scale = np.abs(expected).max()
    assert np.abs(net.grads - expected).max() <= 1e-10 * scale  # measured: at most 1.1e-14 of the largest

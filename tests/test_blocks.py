"""Blocks: batch and layer normalization, residual blocks, trainable alpha, exact against finite differences."""

import hashlib
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backprop_core import BlockNetwork, Network, Trainer, fit, get_initializer, get_loss, get_optimizer, gradient_check
from backprop_core.initializers import get_bias_initializer
from backprop_core.normalization import normalize, normalize_backward

HIDDEN = ["tanh", "relu", "sigmoid", "gelu"]
# (norm, residual, layers_per_block, order, train_alpha): every shape a BlockNetwork takes
SHAPES = [(norm, False, 1, "post", False) for norm in ("batch", "layer")] + [
    (norm, True, lpb, order, train_alpha)
    for norm, lpb, order, train_alpha in itertools.product(("none", "batch", "layer"), (1, 2), ("pre", "post"), (False, True))]
OUTPUTS = [("identity", "mse"), ("sigmoid", "bce"), ("softmax", "cross_entropy")]


def block_problem(shape, hidden, output="identity", loss_name="mse", dtype=np.float64, seed=0, n=6):
    norm, residual, lpb, order, train_alpha = shape
    rng = np.random.default_rng(seed)
    net = BlockNetwork([3, 4] + [4] * (2 * lpb) + [3], hidden, output, norm=norm, residual=residual,
                       layers_per_block=lpb, order=order, alpha=0.7, train_alpha=train_alpha, dtype=dtype)
    net.initialize(get_initializer("normal", std=0.8), rng, get_bias_initializer("normal", std=0.1))
    net.params += rng.normal(0, 0.2, net.n_params).astype(dtype)  # gamma, beta, alpha away from 1, 0, 0.7
    X = rng.normal(size=(n, 3))
    Y = {"mse": rng.normal(size=(n, 3)), "bce": rng.uniform(0, 1, (n, 3)),
         "cross_entropy": np.eye(3)[rng.integers(0, 3, n)]}[loss_name]
    return net, X, Y


def _cancelled_by_batch_norm(net: BlockNetwork, name: str) -> bool:
    """A bias whose layer's output feeds only a batch normalization: its exact gradient is 0 (the norm
    subtracts the batch mean), so finite differences see only their round-off."""
    if net.norm != "batch" or not name.startswith("b/"):
        return False
    k = int(name[3:]) - 1
    post_normalized = net.kinds[k] == "post" and k in net.norm_widths
    feeds_a_pre_norm = net.kinds[k] == "pre" and any(k in block[:-1] for block in net.blocks)
    return post_normalized or feeds_a_pre_norm


@pytest.mark.parametrize("output,loss_name", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_block_gradient_matches_central_differences(shape, hidden, output, loss_name, dtype):
    net, X, Y = block_problem(shape, hidden, output, loss_name, dtype)
    result = gradient_check(net, X, Y, get_loss(loss_name), h=1e-6)  # LayerNorm curves: h=1e-5 truncates at ~5e-7
    names = [name for name, _, _ in net.parameter_segments()]
    assert set(result.errors) == set(names)
    for name in names:
        if _cancelled_by_batch_norm(net, name):
            assert result.abs_errors[name] < 1e-8, name
        else:
            assert result.errors[name] < 1e-7, (name, result.errors[name])


def test_a_bias_before_batch_norm_gets_exactly_no_gradient():
    net, X, Y = block_problem(("batch", False, 1, "post", False), "tanh")
    net.loss_and_grad(X, Y, get_loss("mse"))
    scale = np.abs(net.grads).max()
    assert all(np.abs(b).max() < 1e-14 * scale for b in net.dL_db[:-1])
    assert np.abs(net.dL_db[-1]).max() > 1e-3 * scale  # the output layer's is not normalized


def test_the_gradient_check_reports_its_error_where_a_gradient_is_not_exactly_zero():
    net, X, Y = block_problem(("batch", False, 1, "post", False), "tanh")
    result = gradient_check(net, X, Y, get_loss("mse"), h=1e-6)
    assert result.max_error > 0.5  # the biases before batch norm: round-off over an exact 0
    assert result.max_error_above(1e-8) < 1e-7 and result.passed(1e-7, 1e-8)


def test_batch_norm_backward_on_a_hand_worked_two_sample_case():
    """One unit, batch z = (3, 1), eps = 1e-5.  Mean 2, biased variance 1, so x_hat = (d/s, -d/s) with
    d = (z1 - z2)/2 = 1 and s = sqrt(d^2 + eps).  For L = g1 x_hat1 + g2 x_hat2 with g = (1, 0):
    d x_hat1 / d d = (s^2 - d^2)/s^3 = eps/s^3, and d d / d z1 = 1/2, d d / d z2 = -1/2, so
    dL/dz = (eps / (2 s^3), -eps / (2 s^3)) = (4.99992500...e-6, -4.99992500...e-6)."""
    eps = 1e-5
    stats = normalize(np.array([[3.0], [1.0]]), "batch", eps)
    s = np.sqrt(1 + eps)
    np.testing.assert_allclose(stats.x_hat.ravel(), [1 / s, -1 / s], rtol=1e-15)
    dz = normalize_backward(np.array([[1.0], [0.0]]), stats, "batch").ravel()
    expected = eps / (2 * s ** 3)
    assert abs(expected - 4.99992500e-6) < 1e-13
    np.testing.assert_allclose(dz, [expected, -expected], rtol=1e-9)


def test_layer_norm_normalizes_each_sample_over_its_units():
    z = np.array([[1.0, 2.0, 3.0], [10.0, 10.0, 16.0]])
    x_hat = normalize(z, "layer", 0.0).x_hat
    # row 1: mean 2, variance 2/3; row 2: mean 12, variance 8
    np.testing.assert_allclose(x_hat, [[-np.sqrt(1.5), 0, np.sqrt(1.5)], [-2 / np.sqrt(8)] * 2 + [4 / np.sqrt(8)]],
                               rtol=1e-15)


def test_without_norm_or_skip_a_block_network_is_the_plain_network():
    rng = np.random.default_rng(1)
    plain = Network([3, 5, 5, 2], "tanh").initialize(get_initializer("glorot_normal"), rng)
    blocks = BlockNetwork([3, 5, 5, 2], "tanh")
    blocks.params[...] = plain.params
    X, Y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    assert plain.loss_and_grad(X, Y, get_loss("mse")) == blocks.loss_and_grad(X, Y, get_loss("mse"))
    assert np.array_equal(plain.grads, blocks.grads)


def test_batch_norm_evaluates_with_running_statistics_updated_after_each_step():
    net, X, Y = block_problem(("batch", False, 1, "post", False), "relu", n=10)
    loss = get_loss("mse")
    assert net.evaluate(X, Y, loss)[0] != net.loss(X, Y, loss)  # running statistics (0, 1) at first
    Z = X @ net.weights[0] + net.biases[0]
    for _ in range(3):  # three training passes on the same parameters, each closed as fit closes a step
        net.loss_and_grad(X, Y, loss)
        net.end_step()
    # running = 0.9^3 * initial (mean 0, variance 1) + (1 - 0.9^3) * the batch's (variance unbiased)
    np.testing.assert_allclose(net.running_mean[0], (1 - 0.9 ** 3) * Z.mean(0, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(net.running_var[0], 0.9 ** 3 + (1 - 0.9 ** 3) * Z.var(0, ddof=1, keepdims=True),
                               rtol=1e-12)
    evaluated = net.evaluate(X, Y, loss)[0]
    net.loss(X, Y, loss)
    gradient_check(net, X, Y, loss)
    assert net.evaluate(X, Y, loss)[0] == evaluated  # a pass that is not a step leaves them
    fit(net, loss, get_optimizer("sgd", lr=0.1), X, Y, trainer=Trainer(epochs=1), rng=np.random.default_rng(0))
    assert net.evaluate(X, Y, loss)[0] != evaluated  # fit closes its steps


def test_layer_norm_evaluates_as_it_trains():
    net, X, Y = block_problem(("layer", True, 2, "pre", False), "tanh")
    assert net.evaluate(X, Y, get_loss("mse"))[0] == net.loss(X, Y, get_loss("mse"))


def test_rezero_starts_as_the_stem_and_head_alone_and_learns_alpha_first():
    rng = np.random.default_rng(2)
    net = BlockNetwork([3, 6, 6, 6, 6, 2], "relu", residual=True, alpha=0.0, train_alpha=True)
    net.initialize(get_initializer("he_normal"), rng)
    X, Y = rng.normal(size=(9, 3)), rng.normal(size=(9, 2))
    net.loss_and_grad(X, Y, get_loss("mse"))
    assert all(not np.any(net.dL_dW[k]) for block in net.blocks for k in block)  # alpha = 0: no branch gradient
    assert all(abs(g[0]) > 0 for g in net.dL_dalpha)
    record = net.block_record()
    assert record["branch_ratio/branch_ratio_b01"] == 0 and record["alpha/alpha_b03"] == 0


def test_block_record_measures_each_branch_against_its_stream():
    net, X, Y = block_problem(("layer", True, 1, "pre", True), "tanh")
    net.loss_and_grad(X, Y, get_loss("mse"))
    h, k = X @ net.weights[0] + net.biases[0], 1
    x_hat = (h - h.mean(1, keepdims=True)) / np.sqrt(h.var(1, keepdims=True) + net.eps)
    h = np.tanh(x_hat * net.gamma[0] + net.beta[0])  # the stem's output: block 1's input
    z = (h - h.mean(1, keepdims=True)) / np.sqrt(h.var(1, keepdims=True) + net.eps)
    F = np.tanh(z * net.gamma[k] + net.beta[k]) @ net.weights[k] + net.biases[k]
    record = net.block_record()
    alpha = net.alpha[0][0]
    assert record["branch_ratio/branch_ratio_b01"] == pytest.approx(abs(alpha) * np.linalg.norm(F) / np.linalg.norm(h), rel=1e-12)
    assert record["stream_length/stream_length_b01"] == pytest.approx(np.mean((h + alpha * F) ** 2), rel=1e-12)
    assert set(record) >= {"gamma_grad_norm/gamma_grad_norm_l01", "beta_grad_norm/beta_grad_norm_l03"}


@pytest.mark.parametrize("kwargs,message", [
    ({"norm": "group"}, "norm='group' is unknown"),
    ({"residual": True, "layers_per_block": 3}, "layers_per_block=3: must be 1 or 2"),
    ({"order": "middle", "residual": True}, "order='middle' is unknown"),
])
def test_a_block_network_refuses_what_it_cannot_be(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BlockNetwork([2, 4, 4, 1], **kwargs)


def test_a_residual_net_needs_one_hidden_width():
    with pytest.raises(ValueError, match="one hidden width"):
        BlockNetwork([2, 4, 5, 1], residual=True)


def test_batch_norm_needs_two_samples_to_train():
    net, X, Y = block_problem(("batch", False, 1, "post", False), "tanh", n=1)
    with pytest.raises(ValueError, match="at least 2 samples"):
        net.loss_and_grad(X, Y, get_loss("mse"))


def _history_hash(activation, loss, optimizer, dtype, bias, depth) -> str:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(64, 2))
    Y = (X[:, :1] * X[:, 1:] > 0).astype(float)
    net = Network([2] + [6] * depth + [1], activation, "sigmoid" if loss == "bce" else "identity", bias=bias, dtype=dtype)
    net.initialize(get_initializer("glorot_normal"), rng)
    result = fit(net, get_loss(loss), get_optimizer(optimizer, lr=0.05), X, Y,
                 trainer=Trainer(epochs=6, batch_size=16, log_every=2), rng=rng, validation=(X[:20], Y[:20]),
                 classification=True)
    text = json.dumps([{k: repr(v) for k, v in r.items()} for r in result.history], sort_keys=True)
    return hashlib.sha256(text.encode() + net.params.tobytes()).hexdigest()[:16]


PLAIN_CASES = [("tanh", "mse", "sgd", "float64", "per_unit", 3), ("relu", "bce", "adam", "float32", "shared", 4),
               ("sigmoid", "mse", "momentum", "float64", "none", 2)]
# the hashes of PLAIN_CASES with the engine of before the blocks (commit d93acc3), per OpenBLAS kernel: a kernel
# rounds these small products its own way, the same on every CPU that runs it (both computed on an AMD EPYC,
# SkylakeX also on an Intel Xeon, with NumPy 2.4.6's OpenBLAS 0.3.31)
PINNED = {"Haswell": ["e3d2c43e413d1c77", "f34c73ade014bc7c", "a99a7a417abd82dd"],
          "SkylakeX": ["14cb3ffeac873c17", "3b01af727279be2e", "0fa43de33902e0fb"]}
HASHES = """
import json, sys
from threadpoolctl import threadpool_info
sys.path.insert(0, sys.argv[1])
from test_blocks import PLAIN_CASES, _history_hash
kernels = [pool.get("architecture") for pool in threadpool_info() if pool.get("internal_api") == "openblas"]
print(json.dumps({"kernels": kernels, "hashes": [_history_hash(*case) for case in PLAIN_CASES]}))
"""


@pytest.mark.parametrize("kernel", sorted(PINNED))
def test_plain_nets_train_bit_for_bit_as_before_blocks_existed(kernel):
    """Every record and the final parameters of three plain runs, hashed, equal to the hashes of the engine
    of before the blocks.  OpenBLAS picks its kernel by the CPU (Haswell on one AMD EPYC here, SkylakeX on an
    Intel Xeon), so the runs are made in a process told which kernel to use (``OPENBLAS_CORETYPE``), with
    one thread; a CPU that cannot run that kernel, or a NumPy without OpenBLAS, skips it."""
    env = dict(os.environ, OPENBLAS_CORETYPE=kernel, OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", HASHES, str(Path(__file__).parent)], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(done.stdout)
    if result["kernels"] != [kernel]:
        pytest.skip(f"OpenBLAS kernel {kernel} not used here (kernels: {result['kernels']})")
    assert result["hashes"] == PINNED[kernel]

"""Every back-propagated gradient against central finite differences in float64."""

import numpy as np
import pytest

from backprop_core import ACTIVATIONS, BIAS_MODES, Network, get_loss, gradient_check
from backprop_core.initializers import get_bias_initializer, get_initializer

from conftest import output_loss_pairs

HIDDEN = sorted(name for name, cls in ACTIVATIONS.items() if cls.elementwise)


def make_problem(sizes, hidden, output, loss_name, bias="per_unit", train_bias=True, seed=0):
    rng = np.random.default_rng(seed)
    net = Network(sizes, hidden, output, bias=bias, train_bias=train_bias)
    # std 0.8 keeps every layer's gradient well above finite-difference noise
    net.initialize(get_initializer("normal", std=0.8), rng, get_bias_initializer("normal", std=0.1))
    n = 5
    X = rng.normal(size=(n, sizes[0]))
    k = sizes[-1]
    if loss_name == "cross_entropy":
        Y = np.eye(k)[rng.integers(0, k, n)]
    elif loss_name == "bce":
        Y = rng.uniform(0, 1, (n, k))  # soft targets exercise the general formula
    else:
        Y = rng.normal(size=(n, k))
    return net, X, Y


def test_pairs_cover_fused_and_general_paths():
    pairs = output_loss_pairs()
    assert ("sigmoid", "bce") in pairs and ("softmax", "cross_entropy") in pairs  # fused
    assert ("softmax", "bce") in pairs and ("sigmoid", "cross_entropy") in pairs  # general chain rule
    assert ("tanh", "bce") not in pairs and ("relu", "cross_entropy") not in pairs
    assert len([p for p in pairs if p[1] == "mse"]) == len(ACTIVATIONS)


@pytest.mark.parametrize("output,loss_name", output_loss_pairs())
@pytest.mark.parametrize("hidden", HIDDEN)
def test_every_activation_and_loss(hidden, output, loss_name):
    # depth 5 with a 1-unit bottleneck
    net, X, Y = make_problem([3, 4, 1, 4, 3, 3], hidden, output, loss_name)
    result = gradient_check(net, X, Y, get_loss(loss_name))
    assert result.passed(rtol=1e-6, atol=1e-9), result.failures()


BIAS_CASES = [
    (sizes, bias, train_bias, hidden, output, loss_name)
    for sizes in ([2, 1], [3, 5, 1], [4, 6, 6, 6, 6, 2])
    for bias in BIAS_MODES
    for train_bias in (True, False)
    for hidden, output, loss_name in (
        ("sigmoid", "sigmoid", "mse"), ("tanh", "softmax", "cross_entropy"), ("relu", "sigmoid", "bce"),
    )
    if not (output == "softmax" and sizes[-1] < 2)  # rejected by design (test_losses)
]


@pytest.mark.parametrize("sizes,bias,train_bias,hidden,output,loss_name", BIAS_CASES)
def test_every_bias_option_and_architecture(sizes, bias, train_bias, hidden, output, loss_name):
    net, X, Y = make_problem(sizes, hidden, output, loss_name, bias, train_bias)
    result = gradient_check(net, X, Y, get_loss(loss_name))
    assert result.passed(rtol=1e-6, atol=1e-9), result.failures()
    assert len(result.errors) == net.n_layers * (1 if bias == "none" else 2)


@pytest.mark.parametrize("loss_name,output,convention", [
    ("mse", "identity", "sum_half"), ("mse", "identity", "mean"), ("bce", "sigmoid", "mean"), ("bce", "sigmoid", "sum"),
    ("bce", "softmax", "sum"),
])
def test_loss_conventions(loss_name, output, convention):
    net, X, Y = make_problem([3, 4, 2], "tanh", output, loss_name)
    assert gradient_check(net, X, Y, get_loss(loss_name, convention=convention)).max_error < 1e-6


def test_bce_sum_is_k_times_the_mean():
    net, X, Y = make_problem([3, 4, 5], "tanh", "sigmoid", "bce")
    assert net.loss(X, Y, get_loss("bce", convention="sum")) == pytest.approx(
        5 * net.loss(X, Y, get_loss("bce")), rel=1e-12)


def test_float32_backward_pass_agrees_with_float64_to_float32_precision():
    # gradient_check casts to float64, so it cannot see the float32 pass: compare the passes instead
    for output, loss in (("sigmoid", "bce"), ("softmax", "cross_entropy"), ("identity", "mse")):
        net, X, Y = make_problem([3, 4, 2], "tanh", output, loss)
        net32 = net.copy(dtype=np.float32)
        value32 = net32.loss_and_grad(X.astype(np.float32), Y.astype(np.float32), get_loss(loss))
        value64 = net.loss_and_grad(X, Y, get_loss(loss))
        assert net32.grads.dtype == np.float32
        assert value32 == pytest.approx(value64, rel=1e-6)
        np.testing.assert_allclose(net32.grads, net.grads, rtol=1e-4, atol=1e-6 * np.abs(net.grads).max())


def test_frozen_bias_is_left_out_of_the_trainable_view():
    net = Network([2, 3, 1], "tanh", "sigmoid", train_bias=False)
    assert net.trainable.size == 2 * 3 + 3 * 1
    net = Network([2, 3, 1], "tanh", "sigmoid", bias="shared")
    assert net.trainable.size == 2 * 3 + 3 * 1 + 2
    net = Network([2, 3, 1], "tanh", "sigmoid", bias="none")
    assert net.trainable.size == 9 and net.biases == [None, None]

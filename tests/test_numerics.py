"""Exact, not merely finite, in saturation; and diagnostics that mean one thing.

References are written here with Python's ``math`` from each function's definition, in the form
that is exact for the sign of z at hand (no engine code): the engine must match them to 1e-12 in
float64 at |z| up to 1e4 and to 1e-5 in float32 at |z| up to 1e3.
"""

import math

import numpy as np
import pytest

from backprop_core import (
    ACTIVATIONS, Network, Trainer, fit, get_activation, get_initializer, get_loss, get_optimizer, gradient_check,
    layer_diagnostics,
)
from backprop_core.activations import SATURATION_EPS


def sigmoid(z):
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def log_sigmoid(z):  # log 1/(1 + e^-z)
    return -math.log1p(math.exp(-z)) if z >= 0 else z - math.log1p(math.exp(z))


def sigmoid_prime(z):  # e^-|z| / (1 + e^-|z|)^2
    e = math.exp(-abs(z))
    return e / (1 + e) ** 2


GELU_C = math.sqrt(2 / math.pi)


def gelu_parts(z):
    zc = max(-1e4, min(1e4, z))
    u = GELU_C * (zc + 0.044715 * zc ** 3)
    s, s_neg = sigmoid(2 * u), sigmoid(-2 * u)
    return z * s, s + 2 * zc * s * s_neg * GELU_C * (1 + 3 * 0.044715 * zc * zc)


# (f(z), f'(z)) from the definitions
REFERENCE = {
    "identity": lambda z: (z, 1.0),
    "sigmoid": lambda z: (sigmoid(z), sigmoid_prime(z)),
    "tanh": lambda z: (math.tanh(z), 4 * math.exp(-2 * abs(z)) / (1 + math.exp(-2 * abs(z))) ** 2),
    "relu": lambda z: (max(z, 0.0), 1.0 if z > 0 else 0.0),
    "leaky_relu": lambda z: (z if z > 0 else 0.01 * z, 1.0 if z > 0 else 0.01),
    "elu": lambda z: (z if z > 0 else math.expm1(z), 1.0 if z > 0 else math.exp(z)),
    "softplus": lambda z: (max(z, 0) + math.log1p(math.exp(-abs(z))), sigmoid(z)),
    "softsign": lambda z: (z / (1 + abs(z)), 1 / (1 + abs(z)) ** 2),
    "gelu": gelu_parts,
}
ZS = [20.0, 100.0, 800.0, 1e4]


def close(actual, expected, rtol, tiny=np.finfo(np.float64).tiny):
    """Relative agreement; below the float's smallest normal number (where subnormals keep fewer digits,
    or the value underflows to 0) agreement to within that smallest normal number."""
    if abs(expected) < tiny:
        return abs(actual - expected) <= tiny
    return abs(actual - expected) <= rtol * abs(expected)


def test_every_elementwise_activation_has_a_reference():
    """One failure naming the activation without a reference, not one per case below."""
    assert set(REFERENCE) == {n for n, cls in ACTIVATIONS.items() if cls.elementwise}


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("dtype,rtol,zmax", [(np.float64, 1e-12, 1e4), (np.float32, 1e-5, 1e3)])
def test_every_activation_and_its_derivative_are_exact_in_saturation(name, dtype, rtol, zmax):
    activation = get_activation(name)
    zs = [s * z for z in ZS + [1.5, 0.3] for s in (1, -1) if z <= zmax]
    Z = np.array([zs], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        A = activation.forward(Z)
        dA = activation.derivative(Z, A)
    tiny = np.finfo(dtype).tiny
    for z, a, d in zip(zs, A[0], dA[0]):
        f, f_prime = REFERENCE[name](float(dtype(z)))
        assert close(float(a), f, rtol, tiny), (name, z, a, f)
        assert close(float(d), f_prime, rtol, tiny), (name, z, d, f_prime)


def two_class_logits(z: float, dtype=np.float64):
    """A net whose output logits are [z, 0] for the single input 1 (no bias): Z = W."""
    net = Network([1, 2], "identity", "softmax", bias="none", dtype=dtype)
    net.weights[0][...] = [[z, 0.0]]
    return net


@pytest.mark.parametrize("z", [s * z for z in ZS for s in (1, -1)])
@pytest.mark.parametrize("target", [0.0, 1.0, 0.3])
@pytest.mark.parametrize("output,loss_name", [("sigmoid", "bce"), ("sigmoid", "cross_entropy"), ("sigmoid", "mse"),
                                              ("softmax", "cross_entropy"), ("softmax", "bce"), ("softmax", "mse")])
def test_every_output_loss_pair_is_exact_from_the_logits(z, target, output, loss_name):
    """One sample.  sigmoid: one unit with logit z.  softmax: two units with logits [z, 0], so that
    a_1 = sigma(z) and a_2 = sigma(-z), and every reference needs only sigmoid and log-sigmoid."""
    X = np.array([[1.0]])
    if output == "sigmoid":
        net = Network([1, 1], "identity", "sigmoid", bias="none")
        net.weights[0][...] = [[z]]
        y = [target]
    else:
        net = two_class_logits(z)
        y = [target, 1.0 - target]
    a, one_minus_a = [sigmoid(z), sigmoid(-z)][:len(y)], [sigmoid(-z), sigmoid(z)][:len(y)]
    log_a, log_1ma = [log_sigmoid(z), log_sigmoid(-z)][:len(y)], [log_sigmoid(-z), log_sigmoid(z)][:len(y)]
    residual = [(1 - yi) * ai - yi * bi for yi, ai, bi in zip(y, a, one_minus_a)]  # a - y, without cancellation
    if loss_name == "bce":
        # softmax over [z, 0]: both units' terms are sigmoid-bce of z against y_1, so the mean over the
        # two outputs equals one unit's term; dL/dz_1 = a_1 - y_1 either way
        value = -sum(yi * la + (1 - yi) * l1 for yi, la, l1 in zip(y, log_a, log_1ma)) / len(y)
        grad = residual[0]
    elif loss_name == "cross_entropy":
        value = -sum(yi * la for yi, la in zip(y, log_a))
        grad = -y[0] * sigmoid(-z) if output == "sigmoid" else residual[0]  # softmax: a_1 sum(y) - y_1
    else:  # mse, sum_half: 1/2 sum (a - y)^2; softmax: a_2 moves against a_1, da/dz_1 = +-sigma'(z)
        value = 0.5 * sum(r * r for r in residual)
        grad = residual[0] * sigmoid_prime(z) - (residual[1] * sigmoid_prime(z) if len(y) == 2 else 0.0)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = net.loss_and_grad(X, np.array([y]), get_loss(loss_name))
    assert close(got, value, 1e-12), (got, value)
    assert close(float(net.dL_dW[0][0, 0]), grad, 1e-12), (float(net.dL_dW[0][0, 0]), grad)


@pytest.mark.parametrize("output,loss_name,z", [("sigmoid", "cross_entropy", -120.0), ("softmax", "bce", 17.0),
                                                ("softmax", "cross_entropy", 800.0), ("sigmoid", "bce", -800.0)])
def test_float32_log_losses_stay_exact(output, loss_name, z):
    """The issue's cases in float32: a logit gap of 17 (softmax + bce) and z = -120 (sigmoid + ce)."""
    X = np.array([[1.0]], np.float32)
    if output == "sigmoid":
        net = Network([1, 1], "identity", "sigmoid", bias="none", dtype=np.float32)
        net.weights[0][...] = [[z]]
        Y = np.array([[1.0]], np.float32)
        expected_value, expected_grad = -log_sigmoid(z), -sigmoid(-z)
    else:
        net = two_class_logits(z, np.float32)
        Y = np.array([[0.0, 1.0]], np.float32)
        # both losses reduce to -log a_2 = -log sigma(-z) here, and dL/dz_1 = a_1 = sigma(z)
        expected_value, expected_grad = -log_sigmoid(-z), sigmoid(z)
    value = net.loss_and_grad(X, Y, get_loss(loss_name))
    assert close(value, expected_value, 1e-6) and close(float(net.dL_dW[0][0, 0]), expected_grad, 1e-6)


def test_the_issues_softmax_bce_example_is_exact():
    # W = [[37.5, 0]], X = [[1]], Y = [[0, 1]]: L = 37.5, dL/dW = [1, -1] (the old path: 372.9, -1.16e291)
    net = two_class_logits(37.5)
    value = net.loss_and_grad(np.array([[1.0]]), np.array([[0.0, 1.0]]), get_loss("bce"))
    assert value == pytest.approx(37.5 + math.log1p(math.exp(-37.5)), rel=1e-15)
    np.testing.assert_allclose(net.dL_dW[0], [[1.0, -1.0]], rtol=1e-15)


@pytest.mark.parametrize("targets", ["soft", "unnormalised"])
@pytest.mark.parametrize("loss_name", ["cross_entropy", "bce"])
def test_softmax_losses_pass_the_gradient_check_for_any_targets(targets, loss_name):
    rng = np.random.default_rng(3)
    net = Network([3, 5, 4], "tanh", "softmax").initialize(get_initializer("glorot_uniform"), rng)
    X = rng.normal(size=(6, 3))
    Y = rng.dirichlet(np.ones(4), size=6) if targets == "soft" else rng.uniform(0, 1, size=(6, 4))
    result = gradient_check(net, X, Y, get_loss(loss_name))
    assert result.passed(rtol=1e-7), result.errors


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_the_saturation_rule_sits_at_the_same_share_of_every_derivative(name):
    activation = get_activation(name)
    Z = np.linspace(-60, 60, 1_200_001)[None, :]
    derivative = np.abs(activation.derivative(Z, activation.forward(Z)))
    # max_derivative is the supremum of |f'| (to 1e-4: GELU's is found on this grid)
    assert derivative.max() == pytest.approx(activation.max_derivative, rel=1e-4)
    # the derivative agrees with central differences of the forward pass
    h, z = 1e-6, np.array([[-3.0, -0.7, 0.4, 2.5]])
    numeric = (activation.forward(z + h) - activation.forward(z - h)) / (2 * h)
    np.testing.assert_allclose(activation.derivative(z, activation.forward(z)), numeric, rtol=1e-6)
    saturated = activation.saturated(Z, activation.forward(Z))
    assert np.array_equal(saturated, derivative < SATURATION_EPS * activation.max_derivative)
    assert activation.has_dead_region == (name == "relu")


def test_act_std_of_a_constant_layer_is_zero_to_the_last_bit():
    net = Network([1, 3, 1], "tanh", "identity")
    net.weights[0][...] = 0.0
    net.biases[0][...] = 0.7
    net.loss_and_grad(np.random.default_rng(0).normal(size=(50, 1)), np.zeros((50, 1)), get_loss("mse"))
    # one pass, E[a^2] - E[a]^2, read 3.7e-9 here; centred, only the mean's last-bit rounding is left
    assert layer_diagnostics(net)["act_std"][0] < 1e-15


@pytest.mark.parametrize("bias", ["per_unit", "shared", "none"])
def test_delta_norm_and_bias_grad_norm_mean_one_thing_each(bias):
    rng = np.random.default_rng(1)
    net = Network([2, 4, 3], "tanh", "identity", bias=bias).initialize(get_initializer("glorot_uniform"), rng)
    X, Y = rng.normal(size=(7, 2)), rng.normal(size=(7, 3))
    initial = net.copy()
    first = fit(net, get_loss("mse"), get_optimizer("sgd", lr=0.1), X, Y, trainer=Trainer(epochs=1),
                rng=rng).history[0]
    initial.forward(X)
    _, dL_dZ = initial.output_delta(get_loss("mse"), Y)  # the output layer's back-propagated error
    delta = np.linalg.norm(dL_dZ.sum(axis=0))
    assert first["delta_norm/delta_norm_l02"] == pytest.approx(delta, rel=1e-12)
    if bias == "none":
        assert "bias_grad_norm/bias_grad_norm_l02" not in first
    elif bias == "shared":  # one bias for the layer: its gradient is the sum over units too
        assert first["bias_grad_norm/bias_grad_norm_l02"] == pytest.approx(abs(dL_dZ.sum()), rel=1e-12)
    else:
        assert first["bias_grad_norm/bias_grad_norm_l02"] == pytest.approx(delta, rel=1e-12)


def test_finite_float32_gradients_above_1e19_are_not_a_divergence():
    net = Network([1, 1], "identity", "identity", bias="none", dtype=np.float32)
    net.weights[0][...] = [[1.0]]
    # L = 1/2 (w x)^2 = 5e19 and dL/dW = w x^2 = 1e20: finite in float32, but its square (1e40) is not
    X, Y = np.array([[1e10]], np.float32), np.array([[0.0]], np.float32)
    result = fit(net, get_loss("mse"), get_optimizer("sgd", lr=1e-30), X, Y, trainer=Trainer(epochs=1),
                 rng=np.random.default_rng(0))
    assert not result.diverged and result.history[0]["grad_norm/global"] == pytest.approx(1e20, rel=1e-6)


def test_a_last_update_that_overflows_is_a_divergence_at_that_step():
    net = Network([1, 1], "identity", "identity", bias="none")
    net.weights[0][...] = [[1.0]]
    X, Y = np.array([[1.0]]), np.array([[0.0]])
    with np.errstate(over="ignore"):
        result = fit(net, get_loss("mse"), get_optimizer("sgd", lr=1e306), X, Y, trainer=Trainer(epochs=1),
                     rng=np.random.default_rng(0))
    assert result.steps == 1 and result.diverged_at_step == 1


def test_an_optimizer_cannot_corrupt_or_be_corrupted_by_the_gradient_buffer():
    class KeepsTheGradient:  # a user's optimizer that keeps what it receives
        def init(self, params):
            return []

        def update(self, grads, state):
            return -0.1 * grads, state + [(grads, grads.copy())]

    rng = np.random.default_rng(0)
    net = Network([2, 3, 1], "tanh", "identity").initialize(get_initializer("glorot_uniform"), rng)
    X, Y = rng.normal(size=(5, 2)), rng.normal(size=(5, 1))
    kept = []

    class Recorder(KeepsTheGradient):
        def update(self, grads, state):
            updates, state = super().update(grads, state)
            kept[:] = state
            return updates, state

    fit(net, get_loss("mse"), Recorder(), X, Y, trainer=Trainer(epochs=4), rng=rng)
    assert len(kept) == 4
    for received, as_received in kept:  # later steps did not overwrite what an earlier step handed over
        assert np.array_equal(received, as_received)
    assert not np.array_equal(kept[0][0], kept[-1][0])

    class WritesIntoIt:
        def init(self, params):
            return ()

        def update(self, grads, state):
            grads *= 0.5
            return -grads, state

    with pytest.raises(ValueError, match="read-only"):
        fit(net, get_loss("mse"), WritesIntoIt(), X, Y, trainer=Trainer(epochs=1), rng=rng)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_writing_into_a_buffer_gives_the_same_bits(name, dtype):
    """The network's passes hand every activation a buffer (``out=``): the same values as without one,
    bit for bit, in the buffer and of its dtype, across both tails and zero."""
    activation = get_activation(name)
    Z = np.array([[-800.0, -30.0, -1.5, -1e-9, 0.0, 1e-9, 1.5, 30.0, 800.0]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        A = activation.forward(Z)
        for method, args, expected in (("forward", (Z,), A), ("derivative", (Z, A), activation.derivative(Z, A))):
            out = np.full_like(Z, np.nan)
            got = getattr(activation, method)(*args, out=out)
            assert got is out and got.dtype == dtype, (method, got.dtype)
            np.testing.assert_array_equal(got, expected, err_msg=method)

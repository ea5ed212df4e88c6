"""backprop_core.theory against closed forms, independent integrals, and wide random networks."""

import math

import numpy as np
import pytest

from backprop_core import Network, get_initializer, get_loss, theory

# ---------------------------------------------------------------- independent references (no engine code)
GRID = np.linspace(-20.0, 20.0, 8001)  # the trapezoid rule is spectrally accurate for these smooth integrands
DENSITY = np.exp(-GRID ** 2 / 2) / math.sqrt(2 * math.pi)


def trapezoid_mean(values: np.ndarray) -> float:
    """E[f(z)] by a dense trapezoid rule on [-20, 20] (h = 0.005)."""
    return float(np.trapezoid(values * DENSITY, GRID))


def tanh_q_star(sigma_w2: float, sigma_b2: float) -> float:
    q = 1.0
    for _ in range(20000):  # plain iteration: away from criticality it converges geometrically
        new = sigma_w2 * trapezoid_mean(np.tanh(math.sqrt(q) * GRID) ** 2) + sigma_b2
        if abs(new - q) < 1e-15:
            break
        q = new
    return new


def tanh_chi1(sigma_w2: float, sigma_b2: float) -> float:
    q = tanh_q_star(sigma_w2, sigma_b2)
    return sigma_w2 * trapezoid_mean(np.cosh(math.sqrt(q) * GRID) ** -4)


def tanh_critical(sigma_b2: float) -> float:
    low, high = 1.0, 4.0
    for _ in range(45):
        mid = (low + high) / 2
        low, high = (mid, high) if tanh_chi1(mid, sigma_b2) < 1 else (low, mid)
    return (low + high) / 2


# ---------------------------------------------------------------- closed forms
@pytest.mark.parametrize("sigma_w2", [0.5, 1.0, 2.0, 3.7])
@pytest.mark.parametrize("q", [1e-6, 0.3, 1.0, 50.0])
def test_relu_closed_forms(sigma_w2, q):
    # relu'(z)^2 = 1[z > 0]: E = 1/2 for every q; E[relu(sqrt(q) z)^2] = q/2
    assert theory.chi1("relu", sigma_w2, q) == pytest.approx(sigma_w2 / 2, abs=1e-9)
    assert theory.length_map(q, "relu", sigma_w2, 0.1) == pytest.approx(sigma_w2 * q / 2 + 0.1, rel=1e-9)


def test_relu_fixed_points_and_critical_line():
    # q* = sigma_b2 / (1 - sigma_w2/2) below sigma_w2 = 2; no finite q* above
    assert theory.q_star("relu", 1.5, 0.1) == pytest.approx(0.1 / (1 - 0.75), rel=1e-9)
    assert theory.q_star("relu", 2.5, 0.1) == math.inf
    assert theory.critical_sigma_w2("relu", 0.0) == pytest.approx(2.0, abs=1e-9)
    assert theory.critical_sigma_w2("relu", 0.3) == pytest.approx(2.0, abs=1e-9)


@pytest.mark.parametrize("c", [-0.6, 0.0, 0.3, 0.9, 0.999])
def test_relu_correlation_map_is_the_arc_cosine_kernel(c):
    # Cho & Saul's arc-cosine kernel: E[relu(u1) relu(u2)] = q/(2 pi) (sqrt(1 - c^2) + (pi - arccos c) c)
    q, sigma_w2, sigma_b2 = 1.3, 1.8, 0.05
    kernel = q / (2 * math.pi) * (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c)
    assert theory.correlation_map(c, "relu", sigma_w2, sigma_b2, q) == pytest.approx(
        (sigma_w2 * kernel + sigma_b2) / q, abs=1e-9)
    # and its slope: E[relu'(u1) relu'(u2)] = (pi - arccos c) / (2 pi)
    assert theory.chi_c("relu", sigma_w2, sigma_b2, q, c) == pytest.approx(
        sigma_w2 * (math.pi - math.acos(c)) / (2 * math.pi), abs=1e-9)


def test_step_derivative_is_not_biased_by_a_node_at_zero():
    # a Gauss-Hermite rule with an odd number of nodes puts one at z = 0 where relu' = 0; ours splits there
    assert theory.gaussian_mean(lambda z: (z > 0).astype(float)) == pytest.approx(0.5, abs=1e-14)


# ---------------------------------------------------------------- tanh against a dense trapezoid
@pytest.mark.parametrize("sigma_b2", [0.01, 0.05, 0.3])
def test_tanh_critical_line_matches_an_independent_integral(sigma_b2):
    assert theory.critical_sigma_w2("tanh", sigma_b2) == pytest.approx(tanh_critical(sigma_b2), abs=1e-6)


def test_tanh_fixed_point_and_chi1_match_the_trapezoid():
    for sigma_w2, sigma_b2 in ((1.2, 0.05), (2.5, 0.05), (4.0, 0.3)):
        assert theory.q_star("tanh", sigma_w2, sigma_b2) == pytest.approx(tanh_q_star(sigma_w2, sigma_b2), rel=1e-8)
        q = theory.q_star("tanh", sigma_w2, sigma_b2)
        assert theory.chi1("tanh", sigma_w2, q) == pytest.approx(tanh_chi1(sigma_w2, sigma_b2), rel=1e-8)


def test_tanh_critical_line_tends_to_one_as_the_bias_vanishes():
    values = [theory.critical_sigma_w2("tanh", b) for b in (1e-1, 1e-2, 1e-4, 1e-6, 1e-8)]
    assert all(a > b for a, b in zip(values, values[1:]))  # decreasing towards 1
    assert 1.0 < values[-1] < 1.01
    # sigma_b2 = 0: q* = 0 and chi1 = sigma_w2 up to 1; beyond, q* > 0 and chi1 - 1 grows only quadratically
    assert theory.critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, abs=1e-6)


def test_phases_of_the_correlation_map():
    # ordered (chi1 < 1): c* = 1 and chi_c = chi1; chaotic: c* < 1 and the fixed point is stable (chi_c < 1)
    assert theory.c_star("tanh", 1.2, 0.05) == 1.0
    c = theory.c_star("tanh", 3.0, 0.05)
    q = theory.q_star("tanh", 3.0, 0.05)
    assert 0 < c < 1
    assert theory.correlation_map(c, "tanh", 3.0, 0.05, q) == pytest.approx(c, abs=1e-9)
    assert theory.chi_c("tanh", 3.0, 0.05, q, c) < 1 < theory.chi1("tanh", 3.0, q)
    assert theory.regime(0.8) == "ordered" and theory.regime(1.01) == "critical" and theory.regime(1.3) == "chaotic"


# ---------------------------------------------------------------- wide random networks
def _wide_net(activation, sigma_w2, sigma_b2, depth, width, seed, weights="gaussian"):
    sizes = [width] * (depth + 1) + [width]
    init = get_initializer("mean_field", sigma_w2=sigma_w2, sigma_b2=sigma_b2, weights=weights)
    return Network(sizes, activation).initialize(init, rng=np.random.default_rng(seed))


@pytest.mark.parametrize("activation, sigma_w2, sigma_b2, width, seeds, tolerance", [
    ("tanh", 1.5, 0.05, 512, 3, 0.05), ("tanh", 3.0, 0.3, 512, 3, 0.05),
    # ReLU's samples correlate towards c = 1 with depth, so a layer's mean is over its units alone and the
    # per-layer sampling error (~sqrt(2/width)) compounds from layer to layer: wider, more seeds
    ("relu", 1.6, 0.1, 1024, 6, 0.08)])
def test_measured_length_per_layer_follows_the_length_map(activation, sigma_w2, sigma_b2, width, seeds, tolerance):
    depth, q_input = 10, 0.7
    X = np.random.default_rng(0).normal(0, math.sqrt(q_input), size=(64, width))
    predicted = theory.length_profile(activation, [sigma_w2] * (depth + 1), sigma_b2, q_input)
    measured = []
    for seed in range(seeds):
        net = _wide_net(activation, sigma_w2, sigma_b2, depth, width, seed)
        net.forward(X)
        measured.append([np.mean(Z ** 2) for Z in net.cache["Z"]])
    assert np.allclose(np.mean(measured, axis=0), predicted, rtol=tolerance)


@pytest.mark.parametrize("activation, sigma_w2, sigma_b2", [("tanh", 1.2, 0.05), ("tanh", 3.0, 0.05), ("relu", 1.6, 0.0),
                                                            ("relu", 2.4, 0.0)])
def test_mean_squared_gradient_scales_by_chi1_per_layer(activation, sigma_w2, sigma_b2):
    """Per sample, E||dL/dZ_l||^2 changes by chi1 per layer, and so does E||dL/dW_l||^2 where the
    length sits at q* (tanh here; a bias-free ReLU net has no finite q*: its ||a_(l-1)||^2 scales by
    sigma_w2/2 per layer and cancels chi1 in ||dL/dW_l||^2 = ||a_(l-1)||^2 ||dL/dZ_l||^2)."""
    width, depth = 256, 12
    q = theory.q_star(activation, sigma_w2, sigma_b2)
    at_fixed_point = 0 < q < math.inf
    q = q if at_fixed_point else 1.0
    chi = theory.chi1(activation, sigma_w2, q)
    rng = np.random.default_rng(1)
    X = rng.normal(0, math.sqrt((q - sigma_b2) / sigma_w2), size=(16, width))  # q^1 = q*
    # targets far from the outputs: the top error dL/dZ_L = a_L - y is then independent of the forward pass,
    # as the theory assumes (a growing a_L would tie a ReLU net's errors to its own forward pass)
    Y = rng.normal(size=(16, width)) * 1e3
    deltas, weights = [], []
    for seed in range(3):
        net = _wide_net(activation, sigma_w2, sigma_b2, depth, width, seed)
        for x, y in zip(X, Y):  # one sample at a time: the theory's norms are per sample
            net.loss_and_grad(x[None], y[None], get_loss("mse"))
            deltas.append([np.sum(d ** 2) for d in net.unit_errors])
            weights.append([np.sum(g ** 2) for g in net.dL_dW])
    assert theory.hidden_log_slope(np.mean(deltas, axis=0)) == pytest.approx(math.log(chi), rel=0.10)
    if at_fixed_point:
        assert theory.hidden_log_slope(np.mean(weights, axis=0)) == pytest.approx(math.log(chi), rel=0.10)


def test_the_log_slope_of_a_profile_with_a_zero_norm_is_nan_without_a_warning():
    # a zero init or dead ReLU units give zero norms: ln 0 is no slope (the warning is an error here)
    assert math.isnan(theory.hidden_log_slope(np.array([1.0, 0.0, 0.5, 0.25, 1.0])))
    # e^-5, e^-4 .. e^0 from the first layer to the last: ln falls by 1 per layer towards the input
    assert theory.hidden_log_slope(np.exp(-np.arange(6.0))[::-1]) == pytest.approx(-1.0)


# ---------------------------------------------------------------- the Jacobian
def test_linear_orthogonal_net_is_an_exact_isometry_scaled_by_sigma_w_to_the_depth():
    sigma_w2, L = 1.3, 6
    net = _wide_net("identity", sigma_w2, 0.0, L - 1, 32, seed=4, weights="orthogonal")  # L + 1 weight layers
    J = theory.jacobian(net, np.random.default_rng(0).normal(size=(3, 32)), upto=net.n_layers)
    s = theory.singular_values(J)
    assert np.allclose(s, math.sqrt(sigma_w2) ** net.n_layers, rtol=1e-12)


def test_jacobian_equals_backprop_of_unit_vectors_and_finite_differences():
    rng = np.random.default_rng(2)
    net = Network([5, 7, 6, 4], "tanh").initialize(get_initializer("mean_field", sigma_w2=1.7, sigma_b2=0.2), rng=rng)
    x = rng.normal(size=(1, 5))
    J = theory.jacobian(net, x)[0]  # (5, 6): input to the last hidden layer
    # backprop: the hidden stack as a net of its own (tanh output), seeded with dL/dA = e_j; its backward
    # pass gives dL/dZ_1, and dL/dx = dL/dZ_1 W_1^T
    stack = Network([5, 7, 6], "tanh", output_activation="tanh")
    for k in range(2):
        stack.weights[k][...] = net.weights[k]
        stack.biases[k][...] = net.biases[k]
    for j in range(6):
        stack.forward(x)
        Z, A = stack.cache["Z"][-1], stack.cache["A"][-1]
        stack.backward(stack.activations[-1].backward(Z, A, np.eye(6)[j][None]))
        assert np.allclose(stack.unit_errors[0] @ net.weights[0].T, J[:, j], atol=1e-14)
    # central differences
    h = 1e-6
    for i in range(5):
        step = np.zeros_like(x)
        step[0, i] = h
        numeric = (_hidden(net, x + step) - _hidden(net, x - step)) / (2 * h)
        assert np.allclose(numeric, J[i], atol=1e-8)


def _hidden(net, x):
    A = x
    for k in range(net.n_layers - 1):
        A = net.activations[k].forward(A @ net.weights[k] + net.biases[k])
    return A[0]


# ---------------------------------------------------------------- initializers' variances
def test_mean_field_initializer_draws_its_variances():
    init = get_initializer("mean_field", sigma_w2=2.5, sigma_b2=0.3)
    net = Network([400, 400, 400], "tanh").initialize(init, rng=np.random.default_rng(0))
    assert np.var(net.weights[1]) * 400 == pytest.approx(2.5, rel=0.02)
    assert np.var(np.concatenate(net.biases)) == pytest.approx(0.3, rel=0.15)
    assert init.variance(400, 30) * 400 == pytest.approx(2.5)
    ortho = get_initializer("mean_field", sigma_w2=2.5, weights="orthogonal")
    W = ortho([(64, 64), (64, 128), (128, 64)], np.random.default_rng(1))
    assert np.allclose(W[0].T @ W[0], 2.5 * np.eye(64))  # square: exactly sigma_w times an orthogonal matrix
    for w in W:  # every shape: fan_in Var(W) = sigma_w2 (summed squares / fan_out, exactly)
        assert np.sum(w ** 2) / w.shape[1] == pytest.approx(2.5, rel=1e-12)


@pytest.mark.parametrize("name, params, fan_in, fan_out, sigma_w2", [
    ("he_normal", {}, 100, 50, 2.0), ("glorot_uniform", {}, 64, 64, 1.0), ("lecun_normal", {"gain": 2.0}, 10, 3, 4.0),
    ("standard", {}, 30, 30, 1 / 3), ("orthogonal", {"gain": 1.5}, 64, 64, 2.25), ("normal", {"std": 0.1}, 50, 5, 0.5),
    ("uniform", {"limit": 0.3}, 20, 20, 20 * 0.09 / 3)])
def test_initializer_variances_are_their_distributions(name, params, fan_in, fan_out, sigma_w2):
    init = get_initializer(name, **params)
    assert fan_in * init.variance(fan_in, fan_out) == pytest.approx(sigma_w2, rel=1e-12)
    draws = np.concatenate([w.ravel() for w in init([(fan_in, fan_out)] * 200, np.random.default_rng(0))])
    assert fan_in * np.var(draws) == pytest.approx(sigma_w2, rel=0.03)


# ------------------------------------ Prasad 2021's shortcut ("What's Happening in Backpropagation?"): f'(z) := 1
def test_hidden_derivative_one_is_the_shortcut_and_not_the_gradient():
    from backprop_core import gradient_check

    rng = np.random.default_rng(5)
    net = Network([2, 3, 3, 1], "sigmoid", output_activation="sigmoid", hidden_derivative="one")
    net.initialize(get_initializer("normal", std=0.8), rng=rng)
    X, Y = rng.normal(size=(4, 2)), rng.uniform(size=(4, 1))
    net.loss_and_grad(X, Y, get_loss("bce"))
    # by hand, plain NumPy: forward, then deltas with the hidden sigmoid' left out (the output's
    # a - y of bce after a sigmoid is kept); bce's mean convention divides by the 4 samples
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    W, b = net.weights, net.biases
    a1 = sig(X @ W[0] + b[0])
    a2 = sig(a1 @ W[1] + b[1])
    a3 = sig(a2 @ W[2] + b[2])
    d3 = (a3 - Y) / 4
    d2 = d3 @ W[2].T  # no * a2 (1 - a2)
    d1 = d2 @ W[1].T  # no * a1 (1 - a1)
    for got, want in zip(net.dL_dW, (X.T @ d1, a1.T @ d2, a2.T @ d3)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert not gradient_check(net, X, Y, get_loss("bce")).passed()  # it is not the gradient
    exact = net.copy()
    exact.hidden_derivative = "exact"
    assert gradient_check(exact, X, Y, get_loss("bce")).passed()


@pytest.mark.parametrize("sigma_b2", [0.01, 0.05, 0.3])
def test_the_critical_line_measured_on_wide_random_nets(sigma_b2):
    """Poole et al.'s critical line, measured: just below the predicted critical sigma_w2 the mean
    squared back-propagated error shrinks towards the input, just above it grows."""
    critical = theory.critical_sigma_w2("tanh", sigma_b2)
    width, depth = 256, 16
    rng = np.random.default_rng(7)
    slopes = []
    for sigma_w2 in (critical - 0.2, critical + 0.2):
        q = theory.q_star("tanh", sigma_w2, sigma_b2)
        X = rng.normal(0, math.sqrt((q - sigma_b2) / sigma_w2), size=(8, width))
        Y = rng.normal(size=(8, width)) * 1e3
        deltas = []
        for seed in range(3):
            net = _wide_net("tanh", sigma_w2, sigma_b2, depth, width, seed)
            for x, y in zip(X, Y):
                net.loss_and_grad(x[None], y[None], get_loss("mse"))
                deltas.append([np.sum(d ** 2) for d in net.unit_errors])
        slopes.append(theory.hidden_log_slope(np.mean(deltas, axis=0)))
    assert slopes[0] < 0 < slopes[1], (critical, slopes)

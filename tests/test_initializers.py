import numpy as np
import pytest

from backprop_core import INITIALIZERS, get_initializer

FAN_IN, FAN_OUT = 800, 600


def draw(name, **params):
    return get_initializer(name, **params)([(FAN_IN, FAN_OUT)], np.random.default_rng(1))[0]


@pytest.mark.parametrize("name,params,std", [
    ("normal", {"std": 0.1}, 0.1),
    ("uniform", {"limit": 0.3}, 0.3 / np.sqrt(3)),
    ("glorot_uniform", {}, np.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("glorot_normal", {}, np.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("xavier_normal", {}, np.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("he_uniform", {}, np.sqrt(2 / FAN_IN)),
    ("he_normal", {}, np.sqrt(2 / FAN_IN)),
    ("kaiming_normal", {"gain": 0.5}, 0.5 * np.sqrt(2 / FAN_IN)),
    ("lecun_normal", {}, np.sqrt(1 / FAN_IN)),
    ("standard", {}, (1 / np.sqrt(FAN_IN)) / np.sqrt(3)),  # U[-1/sqrt(n), 1/sqrt(n)]
    ("orthogonal", {}, np.sqrt(1 / FAN_IN)),  # 600 orthonormal columns of length 800
])
def test_empirical_moments_match_the_formula(name, params, std):
    W = draw(name, **params)
    assert W.shape == (FAN_IN, FAN_OUT)
    assert abs(W.mean()) < 0.01 * std * 10  # mean 0 within 10 % of a std (480k draws)
    assert W.std() == pytest.approx(std, rel=0.02)


def test_uniform_families_respect_their_limits():
    assert np.abs(draw("glorot_uniform")).max() <= np.sqrt(6 / (FAN_IN + FAN_OUT))
    assert np.abs(draw("he_uniform")).max() <= np.sqrt(6 / FAN_IN)
    assert np.abs(draw("standard")).max() <= 1 / np.sqrt(FAN_IN)


def test_orthogonal_columns_are_orthonormal():
    W = draw("orthogonal", gain=2.0)
    np.testing.assert_allclose(W.T @ W, 4.0 * np.eye(FAN_OUT), atol=1e-10)
    W = get_initializer("orthogonal")([(30, 50)], np.random.default_rng(0))[0]
    np.testing.assert_allclose(W @ W.T, np.eye(30), atol=1e-10)


def test_constant_and_zeros():
    assert np.all(draw("zeros") == 0)
    assert np.all(draw("constant", value=0.25) == 0.25)


def test_legacy_reproduces_numpys_seeded_global_stream():
    shapes = [(2, 3), (3, 1)]
    got = get_initializer("legacy", seed=42, scale=0.1)(shapes, np.random.default_rng(999))
    np.random.seed(42)  # the published program's own calls, in its (fan_out, fan_in) layout
    W1 = np.random.randn(3, 2) * 0.1
    W2 = np.random.randn(1, 3) * 0.1
    assert np.array_equal(got[0], W1.T) and np.array_equal(got[1], W2.T)


def test_explicit_checks_shapes():
    init = get_initializer("explicit", weights=[[[1.0, 2.0]], [[3.0], [4.0]]])
    W1, W2 = init([(1, 2), (2, 1)], np.random.default_rng(0))
    assert W1.tolist() == [[1.0, 2.0]] and W2.tolist() == [[3.0], [4.0]]
    with pytest.raises(ValueError, match=r"weights\[0\]: has shape \(1, 2\), layer 1 needs \(2, 2\)"):
        init([(2, 2), (2, 1)], np.random.default_rng(0))


def test_every_draw_uses_the_generator_it_is_given():
    for name in INITIALIZERS:
        if name in ("legacy", "explicit", "zeros", "constant"):
            continue
        init = get_initializer(name)
        a = init([(5, 4)], np.random.default_rng(3))[0]
        b = init([(5, 4)], np.random.default_rng(3))[0]
        c = init([(5, 4)], np.random.default_rng(4))[0]
        assert np.array_equal(a, b) and not np.array_equal(a, c), name


@pytest.mark.parametrize("name,params,key", [("normal", {"std": 0}, "std"), ("uniform", {"limit": -1}, "limit")])
def test_bad_scale_is_named(name, params, key):
    with pytest.raises(ValueError, match=rf"^{key}=.*: must be > 0"):
        get_initializer(name, **params)


def test_an_initializer_is_one_type_with_its_draws_variance_and_own_biases():
    from backprop_core import Initializer

    he = get_initializer("he_normal")
    assert isinstance(he, Initializer) and he.biases is None
    assert he.variance(50, 10) == pytest.approx(2 / 50)
    assert get_initializer("explicit", weights=[[[1.0]]]).variance is None  # given values: no distribution
    field = get_initializer("mean_field", sigma_w2=2.0, sigma_b2=0.25)
    assert isinstance(field.biases, Initializer) and field.biases.variance(1) == pytest.approx(0.25)
    arrays = he([(50, 10), (10, 1)], np.random.default_rng(0), np.float32)
    assert [a.shape for a in arrays] == [(50, 10), (10, 1)] and arrays[0].dtype == np.float32

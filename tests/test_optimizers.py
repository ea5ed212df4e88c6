"""The first two updates of every optimizer, worked out by hand.

Gradients: g1 = [1, -2], then g2 = [0.5, 0.5]; lr = 0.1 throughout.
"""

import numpy as np
import pytest

from backprop_core import OPTIMIZERS, clip_by_global_norm, clip_by_value, get_optimizer

G1, G2 = np.array([1.0, -2.0]), np.array([0.5, 0.5])


def two_updates(name, **params):
    opt = get_optimizer(name, lr=0.1, **params)
    state = opt.init(np.zeros(2))
    u1, state = opt.update(G1, state)
    u2, state = opt.update(G2, state)
    return u1, u2


def test_sgd():
    u1, u2 = two_updates("sgd")
    np.testing.assert_allclose(u1, [-0.1, 0.2])
    np.testing.assert_allclose(u2, [-0.05, -0.05])


def test_momentum():
    # v1 = g1 = [1, -2]; v2 = 0.9 v1 + g2 = [1.4, -1.3]
    u1, u2 = two_updates("momentum", momentum=0.9)
    np.testing.assert_allclose(u1, [-0.1, 0.2])
    np.testing.assert_allclose(u2, [-0.14, 0.13])


def test_nesterov():
    # step1 = g1 + 0.9 v1 = [1.9, -3.8]; step2 = g2 + 0.9 v2 = [0.5 + 1.26, 0.5 - 1.17] = [1.76, -0.67]
    u1, u2 = two_updates("momentum", momentum=0.9, nesterov=True)
    np.testing.assert_allclose(u1, [-0.19, 0.38])
    np.testing.assert_allclose(u2, [-0.176, 0.067])


def test_rmsprop():
    # s1 = 0.1 g1^2 = [0.1, 0.4]; u1 = -0.1 g1 / sqrt(s1) = [-0.1/0.316228, 0.2/0.632456] = [-0.316228, 0.316228]
    # s2 = 0.9 s1 + 0.1 g2^2 = [0.115, 0.385]; u2 = -0.1 * 0.5 / sqrt(s2) = [-0.147442, -0.080582]
    u1, u2 = two_updates("rmsprop", rho=0.9, eps=0.0 + 1e-12)
    np.testing.assert_allclose(u1, [-0.31622777, 0.31622777], rtol=1e-7)
    np.testing.assert_allclose(u2, [-0.14744196, -0.08058230], rtol=1e-7)


def test_adam():
    # m1 = 0.1 g1, v1 = 0.001 g1^2 -> m_hat = g1, v_hat = g1^2 -> u1 = -0.1 sign(g1)
    # m2 = 0.9 m1 + 0.1 g2 = [0.14, -0.13], m_hat = m2 / 0.19 = [0.736842, -0.684211]
    # v2 = 0.999 v1 + 0.001 g2^2 = [0.001249, 0.004246], v_hat = v2 / 0.001999 = [0.62481241, 2.12406203]
    # u2 = -0.1 m_hat / sqrt(v_hat) = [-0.1 * 0.73684211 / 0.79045077, 0.1 * 0.68421053 / 1.45741622]
    #    = [-0.09321796, 0.04694682]
    u1, u2 = two_updates("adam", eps=1e-12)
    np.testing.assert_allclose(u1, [-0.1, 0.1], rtol=1e-9)
    np.testing.assert_allclose(u2, [-0.09321796, 0.04694682], rtol=1e-7)


def test_clipping():
    g = np.array([3.0, 4.0])  # norm 5
    np.testing.assert_allclose(clip_by_global_norm(g, 1.0), [0.6, 0.8])
    assert clip_by_global_norm(g, 10.0) is g
    np.testing.assert_allclose(clip_by_value(g, 3.5), [3.0, 3.5])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_rejects_a_non_positive_lr(name):
    with pytest.raises(ValueError, match=r"^lr=0: must be > 0"):
        get_optimizer(name, lr=0)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_descends_a_quadratic(name):
    opt = get_optimizer(name, lr=0.05)
    x = np.array([2.0, -3.0])
    state = opt.init(x)
    for _ in range(300):
        updates, state = opt.update(x, state)  # gradient of |x|^2 / 2
        x = x + updates
    assert np.linalg.norm(x) < 0.05

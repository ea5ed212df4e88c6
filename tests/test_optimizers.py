"""The first two updates of every optimizer, worked out by hand.

Gradients: g1 = [1, -2], then g2 = [0.5, 0.5]; lr = 0.1 throughout.
"""

import numpy as np
import pytest

from backprop_core import OPTIMIZERS, Network, Trainer, chain, clip_by_global_norm, clip_by_value, fit, get_initializer, get_loss, get_optimizer
from backprop_core.optimizers import Chain, ClipByGlobalNorm, ClipByValue

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
    assert clip_by_global_norm(np.array([np.inf, 1.0]), 1.0)[1] == 1.0  # left to the divergence guard


def test_chain_applies_the_clipping_then_the_optimizer_and_keeps_each_state():
    # momentum 0.5, lr 0.1 after clipping [3, 4] (norm 5) to norm 1 = [0.6, 0.8], then by value 0.7:
    # g = [0.6, 0.7]; v1 = g, update -0.1 g; v2 = 0.5 g + g = 1.5 g, update -0.15 g
    transform = chain(ClipByGlobalNorm(1.0), ClipByValue(0.7), get_optimizer("momentum", lr=0.1, momentum=0.5))
    assert isinstance(transform, Chain)
    state = transform.init(np.zeros(2))
    g = np.array([3.0, 4.0])
    u1, state = transform.update(g, state)
    u2, state = transform.update(g, state)
    np.testing.assert_allclose(u1, [-0.06, -0.07], rtol=1e-15)
    np.testing.assert_allclose(u2, [-0.09, -0.105], rtol=1e-15)
    np.testing.assert_allclose(state[2].velocity, [0.9, 1.05], rtol=1e-15)
    sgd = get_optimizer("sgd", lr=1.0)
    assert chain(sgd) is sgd  # one transform is itself


def test_fit_clips_through_the_chain():
    """The trainer's clipping comes before the optimizer: a fit with clip_grad_norm applies exactly the
    updates of the same chain run by hand."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(8, 3)), rng.normal(size=(8, 1))

    def net():
        return Network([3, 4, 1], "tanh").initialize(get_initializer("normal", std=2.0), np.random.default_rng(1))

    fitted, by_hand = net(), net()
    loss, sgd = get_loss("mse"), get_optimizer("sgd", lr=0.5)
    fit(fitted, loss, sgd, X, Y, trainer=Trainer(epochs=3, clip_grad_norm=0.01), rng=rng)
    transform = chain(ClipByGlobalNorm(0.01), sgd)
    state = transform.init(by_hand.trainable)
    for _ in range(3):
        by_hand.loss_and_grad(X, Y, loss)
        updates, state = transform.update(by_hand.trainable_grads.copy(), state)
        assert np.sqrt(np.vdot(updates, updates)) == pytest.approx(0.5 * 0.01)  # the norm was above 0.01
        by_hand.trainable[...] += updates
    np.testing.assert_array_equal(fitted.params, by_hand.params)


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

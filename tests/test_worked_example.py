"""Seed 003, section 5: the 2-2-1 sigmoid network traced by hand.

Hand derivation (sigma(z) = 1 / (1 + e^-z), loss C = 1/2 (a - y)^2, lr 0.5):

    z_h1 = 0.15*0.05 + 0.20*0.10 + 0.35 = 0.3775        a_h1 = sigma(0.3775) = 0.5932699921
    z_h2 = 0.25*0.05 + 0.30*0.10 + 0.35 = 0.3925        a_h2 = sigma(0.3925) = 0.5968843783
    z_o  = 0.40*a_h1 + 0.45*a_h2 + 0.60 = 1.1059059671  a_o  = sigma(z_o)    = 0.7513650696
    C    = 1/2 (0.7513650696 - 0.01)^2                                      = 0.2748110832
      (the article prints 0.75137 and 0.27481)

    delta_o  = (a_o - y) a_o (1 - a_o)  = 0.74136507 * 0.75136507 * 0.24863493 = 0.138498561629
    dC/dw5   = delta_o a_h1 = 0.082167040564      dC/dw6 = delta_o a_h2 = 0.082667627848
    dC/db_o  = delta_o      = 0.138498561629
    delta_h1 = delta_o * 0.40 * a_h1 (1 - a_h1) = 0.013367920423
    delta_h2 = delta_o * 0.45 * a_h2 (1 - a_h2) = 0.014996075489
    dC/dw1 = delta_h1 x1 = 6.683960211e-4   dC/dw2 = delta_h1 x2 = 1.336792042e-3
    dC/dw3 = delta_h2 x1 = 7.498037744e-4   dC/dw4 = delta_h2 x2 = 1.499607549e-3
    dC/db_h1 = delta_h1,  dC/db_h2 = delta_h2

After one step of gradient descent (every weight w <- w - 0.5 dC/dw) the same arithmetic
gives a_o = 0.7283521371 and C = 0.2580148964; the article prints 0.718 and 0.250, which
its own method does not give.
"""

import numpy as np
import pytest

from backprop_core import Network, Trainer, fit, get_loss, get_optimizer
from backprop_core.initializers import get_bias_initializer, get_initializer

X = np.array([[0.05, 0.10]])
Y = np.array([[0.01]])
# (fan_in, fan_out) layout: column j holds the weights into unit j
W_HIDDEN = [[0.15, 0.25], [0.20, 0.30]]
W_OUTPUT = [[0.40], [0.45]]


def article_net() -> Network:
    net = Network([2, 2, 1], "sigmoid", "sigmoid")
    return net.initialize(
        get_initializer("explicit", weights=[W_HIDDEN, W_OUTPUT]),
        np.random.default_rng(0),
        get_bias_initializer("explicit", values=[0.35, 0.60]),
    )


def test_forward_pass_matches_the_article():
    net = article_net()
    out = net.forward(X)
    np.testing.assert_allclose(net.cache["Z"][0], [[0.3775, 0.3925]], rtol=1e-12)
    np.testing.assert_allclose(net.cache["A"][0], [[0.5932699921, 0.5968843783]], rtol=1e-9)
    np.testing.assert_allclose(out, [[0.7513650696]], rtol=1e-9)
    assert round(out[0, 0], 5) == 0.75137
    loss = get_loss("mse", convention="sum_half").value(out, Y)
    assert loss == pytest.approx(0.2748110832, rel=1e-9)
    assert round(loss, 5) == 0.27481


def test_every_gradient_matches_the_hand_derivation():
    net = article_net()
    net.loss_and_grad(X, Y, get_loss("mse"))
    np.testing.assert_allclose(net.dL_dW[1], [[0.082167040564], [0.082667627848]], rtol=1e-9)
    np.testing.assert_allclose(net.dL_db[1], [0.138498561629], rtol=1e-9)
    np.testing.assert_allclose(
        net.dL_dW[0], [[6.683960211444e-4, 7.498037744448e-4], [1.336792042289e-3, 1.499607548890e-3]], rtol=1e-9
    )
    np.testing.assert_allclose(net.dL_db[0], [0.013367920423, 0.014996075489], rtol=1e-9)


def test_one_update_gives_what_the_math_gives_not_the_article_figures():
    net = article_net()
    history = fit(
        net, get_loss("mse"), get_optimizer("sgd", lr=0.5), X, Y,
        trainer=Trainer(epochs=2), rng=np.random.default_rng(0),
    ).history
    assert [r["step"] for r in history] == [0, 1, 2]  # two updates, then the closing record
    assert history[0]["train/loss"] == pytest.approx(0.2748110832, rel=1e-9)
    assert history[1]["train/loss"] == pytest.approx(0.2580148964, rel=1e-9)
    assert history[1]["train/loss"] != pytest.approx(0.250, abs=5e-4)

"""No overflow, no NaN and no NumPy warning at |z| = 1000, for every activation and loss."""

import warnings

import numpy as np
import pytest

from backprop_core import ACTIVATIONS, Network, get_activation, get_loss

from conftest import output_loss_pairs

Z = np.array([[-1000.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1000.0]])


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise", under="ignore"):  # underflow to 0 is exact enough and silent by default
            yield


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_activation_is_finite_at_the_extremes(name, dtype):
    activation = get_activation(name)
    Zd = Z.astype(dtype)
    A = activation.forward(Zd)
    dL_dZ = activation.backward(Zd, A, np.ones_like(A))
    assert A.dtype == dtype and dL_dZ.dtype == dtype
    assert np.all(np.isfinite(A)) and np.all(np.isfinite(dL_dZ))
    saturated = activation.saturated(Zd, A)  # the saturation rule too holds at the extremes: a mask, no NaN
    assert saturated.dtype == bool and saturated.shape == A.shape


@pytest.mark.parametrize("output,loss_name", output_loss_pairs(2))
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_loss_and_delta_are_finite_at_logits_of_1000(output, loss_name, sign):
    net = Network([1, 2], "identity", output)
    net.weights[0][...] = [[sign * 1000.0, -sign * 1000.0]]
    X = np.array([[1.0], [1.0]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])  # one sample right, one badly wrong
    value = net.loss_and_grad(X, Y, get_loss(loss_name))
    assert np.isfinite(value)
    assert np.all(np.isfinite(net.grads))

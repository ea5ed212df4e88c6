"""One training step: backprop_core (diagnostics on every step) vs a minimal NumPy loop.

    python benchmarks/step_cost.py

Both train the same net (tanh hidden, softmax + cross-entropy, plain SGD) on the same
batch; each timing is the median of several repeats of many steps, measured in one process,
interleaved so that machine noise hits both alike.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from backprop_core import Network, Trainer, get_initializer, get_loss, get_optimizer, layer_diagnostics
from backprop_core.optimizers import SGD


def minimal_step(Ws, bs, X, Y, lr):
    """The shortest honest NumPy training step for the same net."""
    As = [X]
    for W, b in zip(Ws[:-1], bs[:-1]):
        As.append(np.tanh(As[-1] @ W + b))
    Z = As[-1] @ Ws[-1] + bs[-1]
    shifted = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(shifted)
    total = E.sum(axis=1, keepdims=True)
    P = E / total
    loss = -np.sum(Y * (shifted - np.log(total))) / len(X)  # reported each step, as the engine does
    dZ = (P - Y) / len(X)
    for k in range(len(Ws) - 1, -1, -1):
        dW = As[k].T @ dZ
        db = dZ.sum(axis=0)
        if k:
            dZ = (dZ @ Ws[k].T) * (1.0 - As[k] * As[k])
        Ws[k] -= lr * dW
        bs[k] -= lr * db
    return loss


def engine_step(net, loss, opt, state, X, Y, diagnostics):
    net.loss_and_grad(X, Y, loss)
    grads = net.trainable_grads
    np.sqrt(np.vdot(grads, grads))  # the divergence check on the global norm
    updates, state = opt.update(grads, state)
    if diagnostics:
        layer_diagnostics(net, updates)
    net.trainable[...] += updates
    return state


def bench(sizes, batch, dtype=np.float64, steps=None, repeats=7):
    rng = np.random.default_rng(0)
    net = Network(sizes, "tanh", "softmax", dtype=dtype).initialize(get_initializer("glorot_uniform"), rng)
    X = rng.standard_normal((batch, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]
    loss, opt = get_loss("cross_entropy"), SGD(lr=0.01)
    state = opt.init(net.trainable)
    Ws = [W.copy() for W in net.weights]
    bs = [b.copy() for b in net.biases]
    steps = steps or max(20, int(2e8 / (6 * batch * sum(i * o for i, o in net.weight_shapes) + 1e6)))

    def timed(fn):
        t = time.perf_counter()
        for _ in range(steps):
            fn()
        return (time.perf_counter() - t) / steps

    times = {"minimal": [], "engine": [], "engine+diag": []}
    for _ in range(repeats):
        times["minimal"].append(timed(lambda: minimal_step(Ws, bs, X, Y, 0.01)))
        times["engine"].append(timed(lambda: engine_step(net, loss, opt, state, X, Y, False)))
        times["engine+diag"].append(timed(lambda: engine_step(net, loss, opt, state, X, Y, True)))
    return {k: statistics.median(v) for k, v in times.items()}


def main():
    cases = [
        ("784-256-256-10, batch 128, float64", [784, 256, 256, 10], 128, np.float64),
        ("784-256-256-10, batch 128, float32", [784, 256, 256, 10], 128, np.float32),
        ("20 hidden x 64, batch 64, float64", [64] + [64] * 20 + [10], 64, np.float64),
    ]
    print(f"{'case':40s} {'minimal':>10s} {'engine':>10s} {'+diag':>10s} {'engine/min':>11s} {'+diag/min':>10s}")
    for name, sizes, batch, dtype in cases:
        t = bench(sizes, batch, dtype)
        print(f"{name:40s} {t['minimal']*1e3:8.3f}ms {t['engine']*1e3:8.3f}ms {t['engine+diag']*1e3:8.3f}ms"
              f" {t['engine']/t['minimal']:10.2f}x {t['engine+diag']/t['minimal']:9.2f}x")


if __name__ == "__main__":
    main()

"""One training step, side by side in one process: backprop_core vs a minimal NumPy loop vs
scikit-learn's ``MLPRegressor.partial_fit`` vs PyTorch on the CPU (when installed).

Every engine trains the same net (tanh hidden layers, identity output, squared error, plain SGD)
on the same batch. Timings are medians over interleaved repeats, so machine noise hits every
engine alike; ratios are what to read.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np

from backprop_core import Network, get_initializer, get_loss, layer_diagnostics
from backprop_core.optimizers import SGD

LR = 0.01


def flops_per_step(sizes: list[int], batch: int) -> float:
    """Matmul FLOPs of one step: forward 2·B·in·out per layer, backward dW (same) and dA (all but the first)."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    forward = sum(2 * batch * i * o for i, o in pairs)
    return forward + forward + (forward - 2 * batch * pairs[0][0] * pairs[0][1])


def minimal_loop(sizes, X, Y, dtype) -> Callable[[], float]:
    """The shortest honest NumPy step for the same net; it reports its loss, as the engine does."""
    rng = np.random.default_rng(0)
    Ws = [rng.normal(0, (1 / i) ** 0.5, (i, o)).astype(dtype) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(o, dtype) for o in sizes[1:]]

    def step() -> float:
        As = [X]
        for W, b in zip(Ws[:-1], bs[:-1]):
            As.append(np.tanh(As[-1] @ W + b))
        out = As[-1] @ Ws[-1] + bs[-1]
        diff = out - Y
        loss = 0.5 * float(np.vdot(diff, diff)) / len(X)
        dZ = diff / len(X)
        for k in range(len(Ws) - 1, -1, -1):
            dW = As[k].T @ dZ
            db = dZ.sum(axis=0)
            if k:
                dZ = (dZ @ Ws[k].T) * (1.0 - As[k] * As[k])
            Ws[k] -= LR * dW
            bs[k] -= LR * db
        return loss

    return step


def engine(sizes, X, Y, dtype, diagnostics_every: int) -> Callable[[], float]:
    """backprop_core's own step as ``fit`` runs it: loss, gradients, global norm (the divergence
    guard), update, and the per-layer diagnostics every ``diagnostics_every`` steps."""
    net = Network(sizes, "tanh", "identity", dtype=dtype).initialize(get_initializer("lecun_normal"),
                                                                      np.random.default_rng(0))
    loss, opt = get_loss("mse"), SGD(lr=LR)
    state = [opt.init(net.trainable)]
    count = [0]

    def step() -> float:
        value = net.loss_and_grad(X, Y, loss)
        grads = net.trainable_grads
        np.sqrt(np.vdot(grads, grads))
        updates, state[0] = opt.update(grads, state[0])
        if count[0] % diagnostics_every == 0:
            layer_diagnostics(net, updates)
        count[0] += 1
        net.trainable[...] += updates
        return value

    return step


def sklearn_step(sizes, X, Y, dtype) -> Callable[[], float]:
    from sklearn.neural_network import MLPRegressor

    model = MLPRegressor(hidden_layer_sizes=tuple(sizes[1:-1]), activation="tanh", solver="sgd",
                         learning_rate_init=LR, momentum=0.0, alpha=0.0, batch_size=len(X), shuffle=False)
    Y_fit = Y if Y.shape[1] > 1 else Y.ravel()

    def step() -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.partial_fit(X, Y_fit)  # one pass over one batch: one SGD step
        return model.loss_

    return step


def torch_step(sizes, X, Y, dtype) -> Callable[[], float] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b, dtype=torch_dtype))
        if i < len(sizes) - 2:
            layers.append(torch.nn.Tanh())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)

    def step() -> float:
        opt.zero_grad()
        loss = 0.5 * ((model(Xt) - Yt) ** 2).sum() / len(Xt)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def matmul_gflops(dtype, n: int = 1024, repeats: int = 5) -> float:
    """This machine's own rate: the median of n x n @ n x n products."""
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
    A @ B
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        A @ B
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


CASES = [
    ("2-3-2, batch 3", [2, 3, 2], 3, np.float64),
    ("2-16-16-2, batch 32", [2, 16, 16, 2], 32, np.float64),
    ("784-256-256-10, batch 128, f64", [784, 256, 256, 10], 128, np.float64),
    ("784-256-256-10, batch 128, f32", [784, 256, 256, 10], 128, np.float32),
    ("20 hidden x 64, batch 64", [64] + [64] * 20 + [10], 64, np.float64),
]


def run_case(sizes, batch, dtype, seconds: float = 0.4, repeats: int = 7) -> dict[str, float]:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((batch, sizes[0])).astype(dtype)
    Y = rng.standard_normal((batch, sizes[-1])).astype(dtype)
    steps = {
        "minimal": minimal_loop(sizes, X, Y, dtype),
        "backprop_core (diagnostics every step)": engine(sizes, X, Y, dtype, 1),
        "backprop_core (diagnostics every 10)": engine(sizes, X, Y, dtype, 10),
        "scikit-learn": sklearn_step(sizes, X, Y, dtype),
        "pytorch": torch_step(sizes, X, Y, dtype),
    }
    steps = {k: v for k, v in steps.items() if v is not None}
    # calibrate: as many steps a repeat as fit in `seconds` for the slowest engine
    per_step = {}
    for name, step in steps.items():
        t = time.perf_counter()
        for _ in range(5):
            step()
        per_step[name] = (time.perf_counter() - t) / 5
    n = max(5, int(seconds / max(per_step.values())))
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            t = time.perf_counter()
            for _ in range(n):
                step()
            times[name].append((time.perf_counter() - t) / n)
    return {name: statistics.median(v) for name, v in times.items()}


def main() -> list[str]:
    lines = []
    peak = {np.float64: matmul_gflops(np.float64), np.float32: matmul_gflops(np.float32)}
    lines.append(f"matmul 1024^3 on this machine: {peak[np.float64]:.1f} GFLOP/s float64, {peak[np.float32]:.1f} float32")
    header = ("| case | minimal loop | backprop_core, diagnostics every step | every 10 steps | scikit-learn "
              "| PyTorch | core/minimal | core(every 10)/minimal | sklearn/core | torch/core | core GFLOP/s (% of matmul) |")
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for name, sizes, batch, dtype in CASES:
        t = run_case(sizes, batch, dtype)
        core, core10, minimal = t["backprop_core (diagnostics every step)"], t["backprop_core (diagnostics every 10)"], t["minimal"]
        sk, pt = t.get("scikit-learn"), t.get("pytorch")
        gflops = flops_per_step(sizes, batch) / core10 / 1e9
        fmt = lambda s: f"{s * 1e6:.0f} µs" if s is not None else "n/a"  # noqa: E731
        lines.append(
            f"| {name} | {fmt(minimal)} | {fmt(core)} | {fmt(core10)} | {fmt(sk)} | {fmt(pt)} | {core / minimal:.2f} "
            f"| {core10 / minimal:.2f} | {sk / core10:.1f} | {pt / core10 if pt else float('nan'):.2f} "
            f"| {gflops:.2f} ({100 * gflops / peak[dtype]:.0f} %) |"
        )
    return lines


if __name__ == "__main__":
    for line in main():
        print(line, flush=True)

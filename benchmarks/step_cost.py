"""One training step, side by side in one process: backprop_core vs a minimal NumPy loop vs
scikit-learn's ``MLPRegressor.partial_fit`` vs PyTorch on the CPU (when installed).

Every engine trains the same net (tanh hidden layers, identity output, squared error, plain SGD)
on the same batch, on one thread each (BLAS and PyTorch's own: the machines are shared 2-core ones).
Timings are medians over interleaved repeats, so machine noise hits every engine alike; ratios are
what to read.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from backprop_core import Network, Trainer, fit, get_initializer, get_loss
from backprop_core.optimizers import SGD

LR = 0.01


def flops_per_step(sizes: list[int], batch: int) -> float:
    """Matmul FLOPs of one step: forward 2·B·in·out per layer, backward dW (same) and dA (all but the first)."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    forward = sum(2 * batch * i * o for i, o in pairs)
    return forward + forward + (forward - 2 * batch * pairs[0][0] * pairs[0][1])


def exact_tanh_derivative(A: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """sech^2 z = 4 e^-2|z| / (1 + e^-2|z|)^2, the engine's form (1 - a^2 reads 0 from |z| = 19 on)."""
    E = np.exp(-2.0 * np.abs(Z))
    return 4.0 * E / np.square(1.0 + E)


def minimal_loop(sizes, X, Y, dtype, exact: bool = False) -> Callable[[], float]:
    """The shortest honest NumPy step for the same net; it reports its loss, as the engine does.
    ``exact``: tanh' from z as the engine computes it, instead of 1 - a^2."""
    rng = np.random.default_rng(0)
    Ws = [rng.normal(0, (1 / i) ** 0.5, (i, o)).astype(dtype) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(o, dtype) for o in sizes[1:]]

    def step() -> float:
        As, Zs = [X], [None]
        for W, b in zip(Ws[:-1], bs[:-1]):
            Zs.append(As[-1] @ W + b)
            As.append(np.tanh(Zs[-1]))
        out = As[-1] @ Ws[-1] + bs[-1]
        diff = out - Y
        loss = 0.5 * float(np.vdot(diff, diff)) / len(X)
        dZ = diff / len(X)
        for k in range(len(Ws) - 1, -1, -1):
            dW = As[k].T @ dZ
            db = dZ.sum(axis=0)
            if k:
                dZ = (dZ @ Ws[k].T) * (exact_tanh_derivative(As[k], Zs[k]) if exact else 1.0 - As[k] * As[k])
            Ws[k] -= LR * dW
            bs[k] -= LR * db
        return loss

    return step


def engine(sizes, X, Y, dtype, log_every: int | None) -> Callable[[int], None]:
    """backprop_core's own ``fit`` on the batch for n updates: loss, gradients, the divergence guard's
    global norm, the flat update, and a record of the per-layer diagnostics every ``log_every`` steps
    (None: none).  A fit also makes its closing record (one more pass): 1/n of a step per step."""
    net = Network(sizes, "tanh", "identity", dtype=dtype).initialize(get_initializer("lecun_normal"),
                                                                      np.random.default_rng(0))
    loss, opt = get_loss("mse"), SGD(lr=LR)
    rng = np.random.default_rng(0)

    def run(n: int) -> None:
        trainer = Trainer(epochs=n, log_every=log_every or n, diagnostics=log_every is not None)
        fit(net, loss, opt, X, Y, trainer=trainer, rng=rng, keep_history="ends")

    return run


def repeated(step: Callable[[], object]) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            step()
    return run


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


def torch_step(sizes, X, Y, dtype, norm: str = "none") -> Callable[[], float] | None:
    """PyTorch's step for the same net (``norm``: ``batch`` or ``layer`` after every hidden Linear, as
    ``BatchNorm1d`` or ``LayerNorm``), or None without torch."""
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
            if norm != "none":
                layers.append(torch.nn.BatchNorm1d(b, dtype=torch_dtype) if norm == "batch"
                              else torch.nn.LayerNorm(b, dtype=torch_dtype))
            layers.append(torch.nn.Tanh())
    model = torch.nn.Sequential(*layers).train()
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


BUDGET_CASES = [CASES[1], CASES[2]]  # the two with targets: 2-16-16-2 and 784-256-256-10 float64


def run_case(sizes, batch, dtype, seconds: float = 0.4, repeats: int = 7) -> dict[str, float]:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((batch, sizes[0])).astype(dtype)
    Y = rng.standard_normal((batch, sizes[-1])).astype(dtype)
    runs = {
        "minimal": repeated(minimal_loop(sizes, X, Y, dtype)),
        "minimal (exact derivative)": repeated(minimal_loop(sizes, X, Y, dtype, exact=True)),
        "backprop_core (diagnostics every step)": engine(sizes, X, Y, dtype, 1),
        "backprop_core (diagnostics every 10)": engine(sizes, X, Y, dtype, 10),
        "backprop_core (no diagnostics)": engine(sizes, X, Y, dtype, None),
        "scikit-learn": repeated(sklearn_step(sizes, X, Y, dtype)),
        "pytorch": repeated(step) if (step := torch_step(sizes, X, Y, dtype)) else None,
    }
    return interleaved({k: v for k, v in runs.items() if v is not None}, seconds, repeats)


def interleaved(runs: dict[str, Callable[[int], None]], seconds: float, repeats: int) -> dict[str, float]:
    """The median seconds a step of each ``run(n)`` (n steps), over ``repeats`` rounds that run every
    engine in turn (machine noise hits them alike); as many steps a round as fit in ``seconds`` for the
    slowest."""
    per_step = {}
    for name, run in runs.items():
        t = time.perf_counter()
        run(5)
        per_step[name] = (time.perf_counter() - t) / 5
    n = max(10, int(seconds / max(per_step.values())))
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            t = time.perf_counter()
            run(n)
            times[name].append((time.perf_counter() - t) / n)
    return {name: statistics.median(v) for name, v in times.items()}


def budget(sizes, batch, dtype, t: dict[str, float], repeats: int = 7) -> list[tuple[str, float]]:
    """Where one step of ``fit`` with diagnostics at every step goes, from the whole runs ``t`` of
    ``run_case`` (their differences) and the diagnostics' two halves timed alone (medians)."""
    from backprop_core.diagnostics import LayerDiagnostics

    rng = np.random.default_rng(1)
    X = rng.standard_normal((batch, sizes[0])).astype(dtype)
    Y = rng.standard_normal((batch, sizes[-1])).astype(dtype)
    net = Network(sizes, "tanh", "identity", dtype=dtype).initialize(get_initializer("lecun_normal"), rng)
    net.loss_and_grad(X, Y, get_loss("mse"))
    diagnostics, updates = LayerDiagnostics(net), -LR * net.trainable_grads

    def norms() -> None:
        diagnostics._segment_norms(net.grads, 2 * net.n_layers)
        for flat in (net.params, updates):
            diagnostics._segment_norms(flat[:net.n_weights], net.n_layers)

    n = max(10, int(0.05 / max(1e-6, t["backprop_core (diagnostics every step)"])))
    norms_time = statistics.median(timed(norms, n) for _ in range(repeats))
    stats_time = statistics.median(timed(diagnostics._activation_stats, n) for _ in range(repeats))
    minimal, exact = t["minimal"], t["minimal (exact derivative)"]
    bare, every = t["backprop_core (no diagnostics)"], t["backprop_core (diagnostics every step)"]
    return [
        ("minimal loop (tanh' as 1 - a^2)", minimal),
        ("+ tanh' exact in saturation (the minimal loop with the engine's derivative)", exact - minimal),
        ("+ the engine's step around it: divergence guard (a copy, the global norm), flat update, loop", bare - exact),
        ("+ diagnostics: per-layer norms of W, dL/dW, dL/db, updates", norms_time),
        ("+ diagnostics: activation mean, std, saturation, dead units", stats_time),
        ("+ the rest of a logged step: the record (9 L floats), the history, the diagnostics on cold caches", every - bare - norms_time - stats_time),
        ("= fit with diagnostics every step", every),
    ]


def timed(piece: Callable[[], object], n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        piece()
    return (time.perf_counter() - t) / n


def main() -> list[str]:
    with threadpool_limits(1, user_api="blas"):
        try:
            import torch
        except ImportError:
            return _table()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return _table()
        finally:
            torch.set_num_threads(threads)


def _table() -> list[str]:
    lines = []
    peak = {np.float64: matmul_gflops(np.float64), np.float32: matmul_gflops(np.float32)}
    lines.append(f"matmul 1024^3 on this machine: {peak[np.float64]:.1f} GFLOP/s float64, {peak[np.float32]:.1f} float32")
    header = ("| case | minimal loop | minimal, exact f' | core, no diagnostics | core, diagnostics every 10 | "
              "core, every step | scikit-learn | PyTorch | every step / minimal | every step / minimal exact "
              "| every 10 / minimal | sklearn / core | torch / core | core GFLOP/s (% of matmul) |")
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    budgets = []
    for name, sizes, batch, dtype in CASES:
        t = run_case(sizes, batch, dtype)
        minimal, exact = t["minimal"], t["minimal (exact derivative)"]
        core, core10, bare = (t[f"backprop_core ({k})"] for k in ("diagnostics every step", "diagnostics every 10", "no diagnostics"))
        sk, pt = t.get("scikit-learn"), t.get("pytorch")
        gflops = flops_per_step(sizes, batch) / core10 / 1e9
        fmt = lambda s: f"{s * 1e6:.0f} µs" if s is not None else "n/a"  # noqa: E731
        lines.append(
            f"| {name} | {fmt(minimal)} | {fmt(exact)} | {fmt(bare)} | {fmt(core10)} | {fmt(core)} | {fmt(sk)} | {fmt(pt)} "
            f"| {core / minimal:.2f} | {core / exact:.2f} | {core10 / minimal:.2f} | {sk / core10:.1f} "
            f"| {pt / core10 if pt else float('nan'):.2f} | {gflops:.2f} ({100 * gflops / peak[dtype]:.0f} %) |"
        )
        if (name, sizes, batch, dtype) in BUDGET_CASES:
            budgets.append((name, budget(sizes, batch, dtype, t)))
    for name, pieces in budgets:
        lines += ["", f"Where a step of {name} goes (fit with diagnostics every step; differences of the runs "
                      "above, the diagnostics' halves timed alone):", "| piece | µs | share |", "|---|---|---|"]
        whole = pieces[-1][1]
        lines += [f"| {piece} | {seconds * 1e6:.1f} | {100 * seconds / whole:.0f} % |" for piece, seconds in pieces]
    return lines


if __name__ == "__main__":
    for line in main():
        print(line, flush=True)

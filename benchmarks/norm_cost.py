"""A step with batch or layer normalization against the same plain step, and against PyTorch on the CPU
(when installed), side by side in one process.

Each net is ``step_cost.CASES``' with tanh hidden layers, a norm after every hidden dense layer
(dense -> norm -> tanh, gamma and beta trainable), squared error and plain SGD, trained by ``fit`` without
diagnostics (the engine's step as a sweep's job drives it between records); PyTorch's is the same
``nn.Sequential`` with ``BatchNorm1d`` or ``LayerNorm``.  One thread each; medians over interleaved
repeats; ratios are what to read.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from backprop_core import BlockNetwork, Network, Trainer, fit, get_initializer, get_loss
from backprop_core.optimizers import SGD
from step_cost import CASES, LR, interleaved, repeated, torch_step


def core(sizes, X, Y, dtype, norm: str) -> Callable[[int], None]:
    rng = np.random.default_rng(0)
    net = Network(sizes, "tanh", dtype=dtype) if norm == "none" else BlockNetwork(sizes, "tanh", norm=norm, dtype=dtype)
    net.initialize(get_initializer("lecun_normal"), rng)
    loss, opt = get_loss("mse"), SGD(lr=LR)

    def run(n: int) -> None:
        fit(net, loss, opt, X, Y, trainer=Trainer(epochs=n, log_every=n, diagnostics=False), rng=rng,
            keep_history="ends")

    return run


def run_case(sizes, batch, dtype, seconds: float = 0.3, repeats: int = 7) -> dict[str, float]:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((batch, sizes[0])).astype(dtype)
    Y = rng.standard_normal((batch, sizes[-1])).astype(dtype)
    runs = {}
    for norm in ("none", "batch", "layer"):
        runs[f"core {norm}"] = core(sizes, X, Y, dtype, norm)
        if (step := torch_step(sizes, X, Y, dtype, norm)) is not None:
            runs[f"torch {norm}"] = repeated(step)
    return interleaved(runs, seconds, repeats)


def main() -> list[str]:
    with threadpool_limits(1, user_api="blas"):
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:
            pass
        header = ("| case | core plain | core batch norm | core layer norm | batch / plain | layer / plain "
                  "| torch plain | torch batch | torch layer | torch / core: plain, batch, layer |")
        lines = [header, "|" + "---|" * (header.count("|") - 1)]
        for name, sizes, batch, dtype in CASES:
            if batch < 2 or len(sizes) < 3:
                continue
            t = run_case(sizes, batch, dtype)
            fmt = lambda s: f"{s * 1e6:.0f} µs" if s is not None else "n/a"  # noqa: E731
            ratios = ", ".join(f"{t[f'torch {n}'] / t[f'core {n}']:.2f}" if f"torch {n}" in t else "n/a"
                               for n in ("none", "batch", "layer"))
            lines.append(f"| {name} | {fmt(t['core none'])} | {fmt(t['core batch'])} | {fmt(t['core layer'])} "
                         f"| {t['core batch'] / t['core none']:.2f} | {t['core layer'] / t['core none']:.2f} "
                         f"| {fmt(t.get('torch none'))} | {fmt(t.get('torch batch'))} | {fmt(t.get('torch layer'))} "
                         f"| {ratios} |")
    return lines


if __name__ == "__main__":
    print("\n".join(main()))

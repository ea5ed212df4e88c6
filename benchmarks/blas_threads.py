"""One BLAS thread against two for one step (forward and backward) of a 4-layer tanh net, by width
and batch: where a second core starts to pay (``runner.run.threads.CROSSOVER_FLOPS``).  Each figure is
the best of three timings; on a machine whose other core is busy, two threads lose everywhere."""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from backprop_core import Network, get_initializer, get_loss

CASES = [(batch, width) for batch in (32, 256) for width in (64, 128, 256, 512, 1024)]


def seconds_per_step(width: int, batch: int, threads: int) -> float:
    rng = np.random.default_rng(0)
    net = Network([width] * 5, "tanh").initialize(get_initializer("glorot_normal"), rng=rng)
    X, Y, loss = rng.normal(size=(batch, width)), rng.normal(size=(batch, width)), get_loss("mse")
    reps = max(3, int(2e7 / (batch * width * width)))
    with threadpool_limits(threads, user_api="blas"):
        net.loss_and_grad(X, Y, loss)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(reps):
                net.loss_and_grad(X, Y, loss)
            best = min(best, (time.perf_counter() - start) / reps)
    return best


def main() -> list[str]:
    lines = ["| batch | width | flops of a layer's product | 1 thread | 2 threads | speed-up |", "|---|---|---|---|---|---|"]
    for batch, width in CASES:
        one, two = seconds_per_step(width, batch, 1), seconds_per_step(width, batch, 2)
        lines.append(f"| {batch} | {width} | {2 * batch * width * width:.1e} | {one * 1e3:.2f} ms | {two * 1e3:.2f} ms "
                     f"| {one / two:.2f}× |")
    return lines


if __name__ == "__main__":
    print("\n".join(main()))

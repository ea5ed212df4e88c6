"""The fit loop: mini-batch gradient descent that reports plain dicts of floats to callbacks.

Step ``s`` (0-based) is the s-th optimizer update.  The record logged at step ``s``
comes from the forward and backward pass of that update, *before* its parameters
change: ``train/loss`` at step 0 is the loss of the initial weights, and its gradient
norms are the gradients update 0 applies.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .diagnostics import DIAGNOSTICS, layer_diagnostics, layer_key
from .losses import Loss
from .network import Network
from .optimizers import clip_by_global_norm, clip_by_value

__all__ = ["Trainer", "Callback", "FitResult", "fit", "accuracy"]


@dataclass(frozen=True)
class Trainer:
    """How to train: the loop's settings (the ``trainer`` config group)."""

    epochs: int = 100
    batch_size: int | None = None  # None: full batch
    max_steps: int | None = None  # optional cap on the number of updates
    log_every: int = 1  # record every N steps; the first and the last are always recorded
    shuffle: bool = True  # reshuffle each epoch (mini-batches only)
    clip_grad_norm: float | None = None
    clip_grad_value: float | None = None
    divergence_guard: bool = True  # stop at the first non-finite loss or gradient
    diagnostics: bool = True  # per-layer diagnostics in every record
    log_outputs: bool = False  # output/uNN: each output unit's activation, averaged over the batch

    def __post_init__(self) -> None:
        for key, minimum in (("epochs", 1), ("batch_size", 1), ("max_steps", 1), ("log_every", 1)):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, (int, np.integer)) or value < minimum):
                raise ValueError(f"trainer.{key}={value!r} must be an integer >= {minimum}")
        for key in ("clip_grad_norm", "clip_grad_value"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ValueError(f"trainer.{key}={value!r} must be > 0 (or null to turn clipping off)")

    def total_steps(self, n_samples: int) -> int:
        per_epoch = math.ceil(n_samples / min(self.batch_size or n_samples, n_samples))
        total = self.epochs * per_epoch
        return min(total, self.max_steps) if self.max_steps is not None else total


class Callback:
    """Receives the loop's records; override what you need."""

    def on_fit_start(self, net: Network, total_steps: int) -> None: ...

    def on_step(self, record: dict[str, float]) -> None: ...

    def on_fit_end(self, result: FitResult) -> None: ...


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)  # one record per logged step
    steps: int = 0  # updates applied
    diverged_at_step: int | None = None
    final: dict[str, float] = field(default_factory=dict)  # losses of the trained network

    @property
    def diverged(self) -> bool:
        return self.diverged_at_step is not None


def accuracy(A: np.ndarray, Y: np.ndarray) -> float:
    """Share of samples classified right: argmax over outputs, or a 0.5 threshold for one output."""
    if A.shape[1] == 1:
        return float(np.mean((A > 0.5) == (Y > 0.5)))
    return float(np.mean(A.argmax(axis=1) == Y.argmax(axis=1)))


def _evaluate(net: Network, loss: Loss, X: np.ndarray, Y: np.ndarray, prefix: str, classify: bool) -> dict:
    value, A = net.evaluate(X, Y, loss)
    out = {f"{prefix}/loss": value}
    if classify:
        out[f"{prefix}/accuracy"] = accuracy(A, Y)
    return out


def _batches(X: np.ndarray, Y: np.ndarray, trainer: Trainer, rng: np.random.Generator):
    """``(epoch, X_batch, Y_batch)`` for every step of the run, ``trainer.total_steps`` in all."""
    n = len(X)
    batch_size = min(trainer.batch_size or n, n)
    steps_left = trainer.total_steps(n)
    for epoch in range(trainer.epochs):
        # full batches are not shuffled: it would change only the summation order
        order = rng.permutation(n) if trainer.shuffle and batch_size < n else None
        for start in range(0, n, batch_size):
            if steps_left == 0:
                return
            steps_left -= 1
            if order is None:
                yield epoch, X[start:start + batch_size], Y[start:start + batch_size]
            else:
                idx = order[start:start + batch_size]
                yield epoch, X[idx], Y[idx]


def fit(
    net: Network,
    loss: Loss,
    optimizer,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    trainer: Trainer = Trainer(),
    rng: np.random.Generator,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    classification: bool = False,
    callbacks: Sequence[Callback] = (),
) -> FitResult:
    """Train ``net`` in place on ``X`` of shape ``(n, sizes[0])`` and ``Y`` of shape ``(n, sizes[-1])``.

    ``rng`` shuffles the mini-batches; ``validation`` is evaluated at every logged step;
    ``classification`` adds accuracies.  Returns the history of logged records.
    """
    X, Y = np.asarray(X, net.dtype), np.asarray(Y, net.dtype)
    if validation is not None:
        validation = (np.asarray(validation[0], net.dtype), np.asarray(validation[1], net.dtype))
    last = trainer.total_steps(len(X)) - 1
    keys = {name: [layer_key(name, k + 1, net.n_layers) for k in range(net.n_layers)] for name in DIAGNOSTICS}
    result = FitResult()
    for callback in callbacks:
        callback.on_fit_start(net, last + 1)

    state = optimizer.init(net.trainable)
    # with the guard on, overflow is caught and reported as divergence: NumPy's warnings would only repeat it
    quiet = np.errstate(over="ignore", invalid="ignore") if trainer.divergence_guard else contextlib.nullcontext()
    with quiet:
        for step, (epoch, Xb, Yb) in enumerate(_batches(X, Y, trainer, rng)):
            value = net.loss_and_grad(Xb, Yb, loss)
            grads = net.trainable_grads
            grad_norm = float(np.sqrt(np.vdot(grads, grads)))
            finite = math.isfinite(value) and math.isfinite(grad_norm)
            diverged = trainer.divergence_guard and not finite
            if trainer.clip_grad_norm is not None and finite:
                grads = clip_by_global_norm(grads, trainer.clip_grad_norm, grad_norm)
            if trainer.clip_grad_value is not None:
                grads = clip_by_value(grads, trainer.clip_grad_value)
            updates = None
            if not diverged:
                updates, state = optimizer.update(grads, state)

            if diverged or step % trainer.log_every == 0 or step == last:
                record = {"step": step, "epoch": epoch, "train/loss": value, "grad_norm/global": grad_norm}
                if classification:
                    record["train/accuracy"] = accuracy(net.cache["A"][-1], Yb)
                if trainer.log_outputs:
                    outputs = net.cache["A"][-1].mean(axis=0).tolist()
                    record.update((layer_key("output", j + 1, len(outputs), "u"), v) for j, v in enumerate(outputs))
                if trainer.diagnostics:
                    for name, values in layer_diagnostics(net, updates).items():
                        record.update(zip(keys[name], values.tolist()))
                if validation is not None:
                    record |= _evaluate(net, loss, *validation, "val", classification)
                result.history.append(record)
                for callback in callbacks:
                    callback.on_step(record)
            if diverged:
                result.diverged_at_step = step
                break
            net.trainable[...] += updates
            result.steps = step + 1

        if not result.diverged:
            result.final = _evaluate(net, loss, X, Y, "train", classification)
            if validation is not None:
                result.final |= _evaluate(net, loss, *validation, "val", classification)
    for callback in callbacks:
        callback.on_fit_end(result)
    return result

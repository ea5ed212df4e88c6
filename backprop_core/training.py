"""The fit loop: mini-batch gradient descent that reports plain dicts of floats to callbacks.

Step ``s`` (0-based) is the s-th optimizer update.  The record logged at step ``s``
comes from the forward and backward pass of that update, *before* its parameters
change: ``train/loss`` at step 0 is the loss of the initial weights, and its gradient
norms are the gradients update 0 applies.  After the last update one closing record is
logged at step ``S`` = the number of updates: a forward and backward pass of the trained
weights over the whole training set.  So a history holds both the initial and the final
state, and "the loss after 10 000 updates" is ``train/loss`` at step 10000.

A callback may end the run early by raising ``StopTraining`` from ``on_step`` (a pruner that judges
the record hopeless): the record that raised it is kept, the update of that step is not applied, and
no closing record follows (``FitResult.stopped_at_step`` and ``stop_reason`` say so).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .diagnostics import LayerDiagnostics, layer_key, sum_of_squares
from .history import History
from .losses import Loss
from .network import Network
from .optimizers import ClipByGlobalNorm, ClipByValue, Optimizer, chain
from .registry import ParameterError

__all__ = ["Trainer", "Callback", "FitResult", "History", "StopTraining", "fit", "accuracy"]


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
    log_outputs: bool = False  # output/output_uNN: each output unit's activation, averaged over the batch

    def __post_init__(self) -> None:
        for key, minimum in (("epochs", 1), ("batch_size", 1), ("max_steps", 1), ("log_every", 1)):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, (int, np.integer)) or value < minimum):
                raise ParameterError(key, value, f"must be an integer >= {minimum}")
        for key in ("clip_grad_norm", "clip_grad_value"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ParameterError(key, value, "must be > 0 (or None to turn clipping off)")

    def clipping(self) -> list[Optimizer]:
        """The gradient transforms that come before the optimizer: by global norm, then by value."""
        return ([ClipByGlobalNorm(self.clip_grad_norm)] if self.clip_grad_norm is not None else []) + \
            ([ClipByValue(self.clip_grad_value)] if self.clip_grad_value is not None else [])

    def steps_per_epoch(self, n_samples: int) -> int:
        return math.ceil(n_samples / min(self.batch_size or n_samples, n_samples))

    def total_steps(self, n_samples: int) -> int:
        total = self.epochs * self.steps_per_epoch(n_samples)
        return min(total, self.max_steps) if self.max_steps is not None else total


class StopTraining(Exception):
    """Raised by a callback's ``on_step`` to end the run at that record; its message is the reason."""


class Callback:
    """Receives the loop's records; override what you need."""

    def on_fit_start(self, net: Network, total_steps: int) -> None: ...

    def on_step(self, record: dict[str, float]) -> None:
        """Called with every logged record; may add keys to it (never change or remove one), or raise
        ``StopTraining`` to end the run there."""

    def on_fit_end(self, result: FitResult) -> None: ...


@dataclass
class FitResult:
    history: History = field(default_factory=History)  # one record per logged step, the closing one last
    steps: int = 0  # updates applied
    diverged_at_step: int | None = None
    stopped_at_step: int | None = None  # a callback raised StopTraining at this step's record
    stop_reason: str = ""
    final: dict[str, float] = field(default_factory=dict)  # losses of the trained network

    @property
    def diverged(self) -> bool:
        return self.diverged_at_step is not None

    @property
    def stopped(self) -> bool:
        return self.stopped_at_step is not None


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


def _handed_over(grads: np.ndarray) -> np.ndarray:
    """The gradient as an optimizer receives it: a read-only copy.  The network reuses its gradient
    buffer every step; an optimizer that kept (or wrote into) that buffer would be corrupted silently."""
    copy = grads.copy()
    copy.flags.writeable = False
    return copy


def _samples(net: Network, X, Y, x_name: str, y_name: str) -> tuple[np.ndarray, np.ndarray]:
    """``X`` and ``Y`` as arrays of the net's dtype, shaped ``(n, sizes[0])`` and ``(n, sizes[-1])``."""
    X, Y = np.asarray(X, net.dtype), np.asarray(Y, net.dtype)
    for name, array, width, side in ((x_name, X, net.sizes[0], "input"), (y_name, Y, net.sizes[-1], "output")):
        if array.ndim != 2 or array.shape[1] != width or not len(array):
            raise ParameterError(name, None, f"has shape {array.shape}; must be (n, {width}): n >= 1 samples in "
                                             f"rows, the net's {side} width in columns", show_value=False)
    if len(X) != len(Y):
        raise ParameterError(y_name, None, f"has {len(Y)} rows; must have as many as {x_name}, {len(X)}",
                             show_value=False)
    return X, Y


class _Logger:
    """Makes a step's record from the net's last pass, hands it to the callbacks, keeps it in the history."""

    def __init__(self, net: Network, loss: Loss, trainer: Trainer, validation, classification: bool,
                 callbacks: Sequence[Callback], history: History) -> None:
        self.net, self.loss, self.trainer, self.validation = net, loss, trainer, validation
        self.classification, self.callbacks, self.history = classification, callbacks, history
        self.diagnostics = LayerDiagnostics(net) if trainer.diagnostics else None

    def __call__(self, step: int, epoch: int, value: float, grad_norm: float, Yb: np.ndarray, updates) -> None:
        record = {"step": step, "epoch": epoch, "train/loss": value, "grad_norm/global": grad_norm}
        outputs = self.net.cache["A"][-1]
        if self.classification:
            record["train/accuracy"] = accuracy(outputs, Yb)
        if self.trainer.log_outputs:
            means = outputs.mean(axis=0).tolist()
            record.update((layer_key("output", j + 1, len(means), "u"), v) for j, v in enumerate(means))
        if self.diagnostics is not None:
            record |= self.diagnostics.record(updates)
        if self.validation is not None:
            record |= _evaluate(self.net, self.loss, *self.validation, "val", self.classification)
        try:
            for callback in self.callbacks:  # a callback may add keys: the later ones and the history see them
                callback.on_step(record)
        finally:  # kept when a callback stops the run here
            self.history.append(record)


def fit(
    net: Network,
    loss: Loss,
    optimizer: Optimizer,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    trainer: Trainer = Trainer(),
    rng: np.random.Generator,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    classification: bool = False,
    callbacks: Sequence[Callback] = (),
    keep_history: str = "all",
) -> FitResult:
    """Train ``net`` in place on ``X`` of shape ``(n, sizes[0])`` and ``Y`` of shape ``(n, sizes[-1])``.

    ``rng`` shuffles the mini-batches; ``validation`` is evaluated at every logged step;
    ``classification`` adds accuracies; ``keep_history="ends"`` keeps only the first and the
    closing record in memory (callbacks still see every record).  The trainer's gradient clipping
    comes before ``optimizer`` (``chain``).  Returns the history of logged records: every
    ``trainer.log_every``-th update, the last one, and the closing record.
    """
    X, Y = _samples(net, X, Y, "X", "Y")
    if validation is not None:
        validation = _samples(net, *validation, "validation X", "validation Y")
    result = FitResult(history=History(keep_history))
    log = _Logger(net, loss, trainer, validation, classification, callbacks, result.history)
    for callback in callbacks:
        callback.on_fit_start(net, trainer.total_steps(len(X)))
    # with the guard on, overflow is caught and reported as divergence: NumPy's warnings would only repeat it
    quiet = np.errstate(over="ignore", invalid="ignore") if trainer.divergence_guard else contextlib.nullcontext()
    with quiet:
        try:
            _update(net, loss, chain(*trainer.clipping(), optimizer), X, Y, trainer, rng, log, result)
            if not result.diverged:
                _close(net, loss, X, Y, trainer, log, result)
        except StopTraining as stop:
            result.stopped_at_step, result.stop_reason = result.steps, str(stop)
    for callback in callbacks:
        callback.on_fit_end(result)
    return result


def _update(net: Network, loss: Loss, optimizer: Optimizer, X: np.ndarray, Y: np.ndarray, trainer: Trainer,
            rng: np.random.Generator, log: _Logger, result: FitResult) -> None:
    """Every update of the run, each logged before it applies (see the module's docstring)."""
    total = trainer.total_steps(len(X))
    state = optimizer.init(net.trainable)
    for step, (epoch, Xb, Yb) in enumerate(_batches(X, Y, trainer, rng)):
        value = net.loss_and_grad(Xb, Yb, loss)
        grads = _handed_over(net.trainable_grads)
        grad_norm = math.sqrt(sum_of_squares(grads))
        diverged = trainer.divergence_guard and not (math.isfinite(value) and math.isfinite(grad_norm))
        updates = None
        if not diverged:
            updates, state = optimizer.update(grads, state)
        if diverged or step % trainer.log_every == 0 or step == total - 1:
            log(step, epoch, value, grad_norm, Yb, updates)
        if diverged:
            result.diverged_at_step = step
            return
        net.trainable[...] += updates
        net.end_step()
        result.steps = step + 1


def _close(net: Network, loss: Loss, X: np.ndarray, Y: np.ndarray, trainer: Trainer, log: _Logger,
           result: FitResult) -> None:
    """The closing record: the trained weights on the whole training set."""
    value = net.loss_and_grad(X, Y, loss)
    grad_norm = math.sqrt(sum_of_squares(net.trainable_grads))
    log(result.steps, result.steps // trainer.steps_per_epoch(len(X)), value, grad_norm, Y, None)
    closing = result.history[len(result.history) - 1]
    result.final = {k: v for k, v in closing.items() if k.startswith(("train/", "val/"))}
    if trainer.divergence_guard and not (math.isfinite(value) and math.isfinite(grad_norm)):
        result.diverged_at_step = result.steps  # the last update overflowed

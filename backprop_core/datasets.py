"""Small datasets, generated with an explicit ``np.random.Generator``.

Each generator returns a ``Dataset`` with train and validation splits.  Classification
sets carry integer labels (``n_classes`` set) and ``Dataset.targets`` encodes them for a
given output width: one column of 0/1 for a single sigmoid unit, one-hot otherwise.
Regression sets carry float targets of shape ``(n, k)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .initializers import get_bias_initializer, get_initializer
from .network import Network
from .registry import ParameterError

__all__ = [
    "Dataset", "DATASETS", "xor", "moons", "circles", "spirals", "blobs", "teacher", "inline",
    "train_val_split", "standardize",
]


@dataclass(frozen=True)
class Dataset:
    name: str
    X_train: np.ndarray  # shape (n_train, n_features)
    y_train: np.ndarray  # int labels, shape (n_train,); or float targets, shape (n_train, k)
    X_val: np.ndarray
    y_val: np.ndarray
    n_classes: int | None = None  # None: regression

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def classification(self) -> bool:
        return self.n_classes is not None

    def n_outputs(self, one_hot: bool = False) -> int:
        """The natural output width: target columns; 1 for two classes unless ``one_hot``; else n_classes."""
        if not self.classification:
            return self.y_train.shape[1]
        return 1 if self.n_classes == 2 and not one_hot else self.n_classes

    def targets(self, n_outputs: int) -> tuple[np.ndarray, np.ndarray]:
        """``(Y_train, Y_val)`` shaped ``(n, n_outputs)`` for a network with ``n_outputs`` units."""
        return self._encode(self.y_train, n_outputs), self._encode(self.y_val, n_outputs)

    def _encode(self, y: np.ndarray, n_outputs: int) -> np.ndarray:
        if not self.classification:
            if y.shape[1] != n_outputs:
                raise ValueError(
                    f"dataset {self.name!r} has {y.shape[1]} target columns, the network {n_outputs} outputs"
                )
            return y.astype(np.float64)
        if n_outputs == 1:
            if self.n_classes > 2:
                raise ValueError(
                    f"dataset {self.name!r} has {self.n_classes} classes; one output unit holds only 2"
                )
            return y.reshape(-1, 1).astype(np.float64)
        if y.max() >= n_outputs:
            raise ValueError(
                f"dataset {self.name!r} has class label {int(y.max())}, outside the output width "
                f"{n_outputs} (labels must be < the number of output units)"
            )
        return np.eye(n_outputs)[y]


def train_val_split(X: np.ndarray, y: np.ndarray, val_fraction: float, rng: np.random.Generator):
    """Shuffle and split: ``X_train, y_train, X_val, y_val``."""
    if not 0 < val_fraction < 1:
        raise ParameterError("val_fraction", val_fraction, "must be in (0, 1)")
    order = rng.permutation(len(X))
    n_val = max(1, round(val_fraction * len(X)))
    if n_val >= len(X):
        raise ParameterError("val_fraction", val_fraction, f"leaves no training sample of {len(X)}: it must "
                                                           "keep at least one")
    val, train = order[:n_val], order[n_val:]
    return X[train], y[train], X[val], y[val]


def standardize(X_train: np.ndarray, X_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero mean, unit variance per feature, with the training split's statistics
    (constant features are left centred, not divided by 0)."""
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (X_train - mean) / std, (X_val - mean) / std


def _check_samples(n_samples: int) -> None:
    if not (isinstance(n_samples, (int, np.integer)) and n_samples >= 4):
        raise ParameterError("n_samples", n_samples, "must be an integer >= 4")


def _check_scale(key: str, value: float) -> None:
    """A spread (noise, std, a box's half-width) is a finite number >= 0."""
    if not (np.isfinite(value) and value >= 0):
        raise ParameterError(key, value, "must be a finite number >= 0")


def _classification(name, X, y, n_classes, val_fraction, rng) -> Dataset:
    return Dataset(name, *train_val_split(X, y.astype(np.int64), val_fraction, rng), n_classes=n_classes)


def xor() -> Dataset:
    """The four XOR points; validation is the same four points."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0, 1, 1, 0])
    return Dataset("xor", X, y, X.copy(), y.copy(), n_classes=2)


def _two_arcs(name, rng, n_samples, noise, val_fraction, sweep, outer, inner) -> Dataset:
    """Class 0 on the arc ``outer(t)``, class 1 on ``inner(t)``, t over ``sweep``; Gaussian noise."""
    _check_samples(n_samples)
    _check_scale("noise", noise)
    n_outer = n_samples // 2
    t_outer, t_inner = sweep(n_outer), sweep(n_samples - n_outer)
    X = np.concatenate([np.stack(outer(t_outer), axis=1), np.stack(inner(t_inner), axis=1)])
    X += rng.normal(0.0, noise, X.shape)
    y = np.repeat([0, 1], [n_outer, n_samples - n_outer])
    return _classification(name, X, y, 2, val_fraction, rng)


def moons(rng: np.random.Generator, n_samples: int = 400, noise: float = 0.1, val_fraction: float = 0.25) -> Dataset:
    """Two interleaving half circles (as scikit-learn's ``make_moons``)."""
    return _two_arcs(
        "moons", rng, n_samples, noise, val_fraction,
        sweep=lambda n: np.linspace(0, np.pi, n),
        outer=lambda t: (np.cos(t), np.sin(t)),
        inner=lambda t: (1 - np.cos(t), 0.5 - np.sin(t)),
    )


def circles(
    rng: np.random.Generator, n_samples: int = 400, noise: float = 0.05, factor: float = 0.5,
    val_fraction: float = 0.25,
) -> Dataset:
    """A small circle inside a large one (as scikit-learn's ``make_circles``)."""
    if not 0 < factor < 1:
        raise ParameterError("factor", factor, "must be in (0, 1)")
    return _two_arcs(
        "circles", rng, n_samples, noise, val_fraction,
        sweep=lambda n: np.linspace(0, 2 * np.pi, n, endpoint=False),
        outer=lambda t: (np.cos(t), np.sin(t)),
        inner=lambda t: (factor * np.cos(t), factor * np.sin(t)),
    )


def spirals(
    rng: np.random.Generator, n_samples: int = 300, n_classes: int = 3, noise: float = 0.2,
    val_fraction: float = 0.25,
) -> Dataset:
    """Interleaved spiral arms, one per class (the CS231n spiral)."""
    _check_samples(n_samples)
    _check_scale("noise", noise)
    if not n_classes >= 2:
        raise ParameterError("n_classes", n_classes, "must be >= 2")
    per_class = n_samples // n_classes
    X, y = [], []
    for c in range(n_classes):
        r = np.linspace(0.0, 1.0, per_class)
        t = np.linspace(c * 4.0, (c + 1) * 4.0, per_class) + rng.normal(0.0, noise, per_class)
        X.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        y.append(np.full(per_class, c))
    return _classification("spirals", np.concatenate(X), np.concatenate(y), n_classes, val_fraction, rng)


def blobs(
    rng: np.random.Generator, n_samples: int = 400, n_classes: int = 3, n_features: int = 2,
    std: float = 1.0, center_box: float = 10.0, val_fraction: float = 0.25,
) -> Dataset:
    """Isotropic Gaussian blobs around centres drawn in ``[-center_box, center_box]``."""
    _check_samples(n_samples)
    for key, value in (("std", std), ("center_box", center_box)):
        _check_scale(key, value)
    if not np.isfinite(2.0 * center_box):
        raise ParameterError("center_box", center_box, "the box's width 2 * center_box must be finite")
    if not (n_classes >= 2 and n_features >= 1):
        raise ParameterError("n_classes" if n_classes < 2 else "n_features", n_classes if n_classes < 2 else n_features,
                             "needs >= 2 classes and >= 1 feature")
    centers = rng.uniform(-center_box, center_box, (n_classes, n_features))
    y = np.arange(n_samples) % n_classes
    X = centers[y] + rng.normal(0.0, std, (n_samples, n_features))
    return _classification("blobs", X, y, n_classes, val_fraction, rng)


def teacher(
    rng: np.random.Generator,
    n_samples: int = 1000,
    n_features: int = 4,
    n_outputs: int = 1,
    hidden_sizes: Sequence[int] = (8,),
    activation: str = "sigmoid",
    output_activation: str = "sigmoid",
    init: str = "normal",
    init_params: dict | None = None,
    bias: str = "none",
    noise: float = 0.0,
    val_fraction: float = 0.25,
) -> Dataset:
    """Targets from a random "teacher" MLP on Gaussian inputs (the experiment of Prasad 2021, "What's Happening in Backpropagation?"): a
    student of another shape can learn them, so the attainable loss is known to be ~0."""
    _check_samples(n_samples)
    _check_scale("noise", noise)
    net = Network([n_features, *hidden_sizes, n_outputs], activation, output_activation, bias=bias)
    params = init_params if init_params is not None else ({"std": 1.0} if init == "normal" else {})
    net.initialize(get_initializer(init, **params), rng, get_bias_initializer("normal", std=1.0))
    X = rng.standard_normal((n_samples, n_features))
    Y = net.forward(X, keep=False)
    if noise:
        Y = Y + rng.normal(0.0, noise, Y.shape)
    return Dataset("teacher", *train_val_split(X, Y, val_fraction, rng))


def inline(
    X: Sequence[Sequence[float]],
    y: Sequence,
    X_val: Sequence[Sequence[float]] | None = None,
    y_val: Sequence | None = None,
    n_classes: int | None = None,
) -> Dataset:
    """Arrays given directly (article examples).  ``y`` holds target rows, or integer labels
    when ``n_classes`` is set.  Without a validation split, validation is the training set."""
    X_train, y_train = _inline_arrays("X", X, "y", y, n_classes)
    if X_val is None:
        X_val, y_val = X_train.copy(), y_train.copy()
    else:
        X_val, y_val = _inline_arrays("X_val", X_val, "y_val", y_val, n_classes)
        for key, train, val in (("X", X_train, X_val), ("y", y_train, y_val)):
            if train.shape[1:] != val.shape[1:]:
                raise ParameterError(f"{key}_val", None, f"has rows of length {val.shape[1] if val.ndim > 1 else 1}, "
                                     f"{key} of {train.shape[1] if train.ndim > 1 else 1}: they must match",
                                     show_value=False)
    return Dataset("inline", X_train, y_train, X_val, y_val, n_classes=n_classes)


def _matrix(key: str, rows) -> np.ndarray:
    rows = [list(r) if isinstance(r, (list, tuple, np.ndarray)) else [r] for r in rows]
    if rows and not any(rows):
        raise ParameterError(key, None, "has empty rows: each row needs at least one number", show_value=False)
    if not rows or len({len(r) for r in rows}) != 1:
        raise ParameterError(key, None, f"has rows of lengths {sorted({len(r) for r in rows})}: all rows need one "
                             "length", show_value=False)
    try:
        A = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ParameterError(key, None, f"must hold numbers only ({err})", show_value=False) from None
    if not np.all(np.isfinite(A)):
        raise ParameterError(key, None, "contains NaN or inf: every value must be finite", show_value=False)
    return A


def _inline_arrays(x_key, X, y_key, y, n_classes) -> tuple[np.ndarray, np.ndarray]:
    X = _matrix(x_key, X)
    if y is None:
        raise ParameterError(y_key, None, f"is missing: give one target row (or label) per row of {x_key}",
                             show_value=False)
    if n_classes is None:
        Y = _matrix(y_key, y)
    else:
        Y = np.asarray(y)
        if Y.ndim != 1 or not np.all((Y >= 0) & (Y == np.round(Y))):
            raise ParameterError(y_key, list(y), "must be integer class labels >= 0")
        Y = Y.astype(np.int64)
    if len(Y) != len(X):
        raise ParameterError(y_key, None, f"has {len(Y)} rows, {x_key} has {len(X)}: they must match", show_value=False)
    return X, Y


DATASETS = {
    "xor": xor, "moons": moons, "circles": circles, "spirals": spirals, "blobs": blobs,
    "teacher": teacher, "inline": inline,
}

"""The runner's datasets: backprop_core's generators plus scikit-learn's bundled digits."""

from __future__ import annotations

import functools

import numpy as np

from backprop_core import datasets as core
from backprop_core.registry import ParameterError

from .processes import imports_unscanned


def digits(rng: np.random.Generator, val_fraction: float = 0.25, scale: float = 1.0) -> core.Dataset:
    """scikit-learn's 8x8 digits (1797 samples, 64 features, 10 classes; shipped with the package,
    no download), split at random, standardized with the training split's statistics and multiplied
    by ``scale`` (the inputs' mean square is then about scale^2: the mean-field presets start the
    length map near its fixed point with it)."""
    X_train, y_train, X_val, y_val = core.train_val_split(*_digits(), val_fraction, rng)
    if not scale > 0:
        raise ParameterError("scale", scale, "must be > 0")
    X_train, X_val = core.standardize(X_train, X_val)
    return core.Dataset("digits", scale * X_train, y_train, scale * X_val, y_val, n_classes=10)


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """The digits' inputs and labels, read once per process (~15 ms: a sweep's checks build every job),
    read-only."""
    with imports_unscanned():  # imported here: ~0.8 s to import (measured), only this dataset needs it
        from sklearn.datasets import load_digits

    bunch = load_digits()
    bunch.data.flags.writeable = bunch.target.flags.writeable = False
    return bunch.data, bunch.target


DATASETS = {**core.DATASETS, "digits": digits}

"""The runner's datasets: backprop_core's generators plus scikit-learn's bundled digits."""

from __future__ import annotations

import numpy as np

from backprop_core import datasets as core


def digits(rng: np.random.Generator, val_fraction: float = 0.25) -> core.Dataset:
    """scikit-learn's 8x8 digits (1797 samples, 64 features, 10 classes; shipped with the package,
    no download), split at random and standardized with the training split's statistics."""
    from sklearn.datasets import load_digits  # imported here: only this dataset needs it

    bunch = load_digits()
    X_train, y_train, X_val, y_val = core.train_val_split(bunch.data, bunch.target, val_fraction, rng)
    X_train, X_val = core.standardize(X_train, X_val)
    return core.Dataset("digits", X_train, y_train, X_val, y_val, n_classes=10)


DATASETS = {**core.DATASETS, "digits": digits}

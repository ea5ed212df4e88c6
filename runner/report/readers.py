"""The run files a report reads, and how (from a store's artifacts or a sweep's folder)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _read_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as arrays:
        return dict(arrays)


READERS = {  # the run artifacts the report reads, and how
    "history.csv": pd.read_csv,
    "distributions.npz": _read_npz,  # tracking.detail=full
    "jacobian.npz": lambda path: _read_npz(path)["singular_values"],  # trainer.jacobian_samples
    "theory.csv": pd.read_csv,  # runs with a mean-field prediction
}

"""The run files a report reads, and how (from a store's artifacts or a sweep's folder)."""

from __future__ import annotations

import numpy as np
import pandas as pd


DRAWN_COLUMNS = ("step", "train/loss", "val/loss")
# the families the report draws as profiles beside grad_norm (``write._figure_tasks``), each in its figure,
# per layer (l) or per block (b)
PROFILE_FIGURES = (("delta_norm", "delta_profile.png", "l"), ("act_std", "act_std_profile.png", "l"),
                   ("stream_length", "stream_profile.png", "b"), ("branch_ratio", "branch_profile.png", "b"))
DRAWN_FAMILIES = ("grad_norm", *(family for family, _, _ in PROFILE_FIGURES))  # per layer (block)


def _read_history(path: str) -> pd.DataFrame:
    """The columns of a run's ``history.csv`` the report's figures draw (``write._figure_tasks``): the
    steps, the losses and the per-layer families above; the others (weights, updates, biases,
    saturation: three fifths of a deep net's columns) are not parsed (a thousand runs' files in half the
    time, measured)."""
    return pd.read_csv(path, usecols=lambda column: column in DRAWN_COLUMNS or column.split("/")[0] in DRAWN_FAMILIES)


def _read_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as arrays:
        return dict(arrays)


READERS = {  # the run artifacts the report reads, and how
    "history.csv": _read_history,
    "distributions.npz": _read_npz,  # tracking.detail=full
    "jacobian.npz": lambda path: _read_npz(path)["singular_values"],  # trainer.jacobian_samples
    "theory.csv": pd.read_csv,  # runs with a mean-field prediction
}

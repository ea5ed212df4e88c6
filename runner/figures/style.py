"""What every figure shares: matplotlib without a display, the history's columns, values a log axis
can show, percentile bands from histograms, and saving."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import LogFormatter  # noqa: E402
from PIL import Image  # noqa: E402  (matplotlib's own dependency)

from backprop_core.distributions import quantile_from_histogram  # noqa: E402

# a title at a fixed height: matplotlib otherwise places each title anew at every draw, measuring every
# axis of the figure (half the time of a 36-panel report figure went there)
plt.rcParams["axes.titley"] = 1.0
plt.rcParams["axes.titlepad"] = 4.0

__all__ = ["plt", "read_history", "layer_columns", "plottable", "distribution_bands", "plain_log_labels",
           "save_figure"]
FIGURE_COMPRESSION = 1  # zlib's level for the PNGs: a tenth larger than at the default 6, a third faster to write
MAX_PLOTTED_POINTS = 4000  # per line: a million-step history draws as fast as a short one


def read_history(path: Path) -> pd.DataFrame:
    """The columns the run's figures draw, from its ``history.csv`` (thinned to about
    ``MAX_PLOTTED_POINTS`` rows, the first and the closing record always kept)."""
    with open(path) as file:
        header = file.readline().strip().split(",")
    wanted = [c for c in header if c in ("step", "train/loss", "val/loss") or c.startswith("grad_norm/grad_norm_l")]
    history = pd.read_csv(path, usecols=wanted)
    stride = max(1, len(history) // MAX_PLOTTED_POINTS)
    if stride > 1:
        keep = np.zeros(len(history), bool)
        keep[::stride] = keep[-1] = True
        history = history[keep].reset_index(drop=True)
    return history


def layer_columns(history: pd.DataFrame, name: str, letter: str = "l") -> list[str]:
    """The columns of ``name`` per layer (``letter="b"``: per residual block), input side first."""
    return sorted(c for c in history.columns if c.startswith(f"{name}/{name}_{letter}"))


def plottable(values) -> np.ndarray:
    """Values a log axis can show: NaN for 0, negatives, inf and anything past 1e100 (over a few
    hundred decades matplotlib's tick arithmetic overflows); an exploding run is drawn up to there."""
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where((values > 0) & (values < 1e100), values, np.nan)


SUPERSCRIPTS = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def power_of_ten(value: float, position: int | None = None, decimal: bool = False) -> str:
    """A log axis's tick label as plain text, ``10⁻⁵`` or ``2×10⁻³``, as matplotlib writes it in mathtext;
    parsing those took a fifth of the time a report's figures take to draw (measured).  With ``decimal``
    (an axis within two decades, each minor tick labelled), from 0.001 to 1000 as a number, ``0.9``:
    ``9×10⁻¹`` beside ``8×10⁻¹`` read as a puzzle."""
    if not (value > 0 and math.isfinite(value)):
        return ""
    exponent = math.floor(math.log10(value) + 1e-9)
    if decimal and -3 <= exponent <= 3:
        return f"{value:.6g}"
    mantissa = round(value / 10.0 ** exponent, 6)
    power = "10" + str(exponent).translate(SUPERSCRIPTS)
    return power if mantissa == 1 else f"{mantissa:g}\u00d7{power}"


class PlainLogFormatter(LogFormatter):
    """The ticks matplotlib labels on a log axis (fewer minor ones as the axis spans more), each label
    written by ``power_of_ten`` (as numbers with ``decimal``)."""

    def __init__(self, *args, decimal: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.decimal = decimal

    def __call__(self, x: float, pos: int | None = None) -> str:
        return power_of_ten(x, decimal=self.decimal) if super().__call__(x, pos) else ""


def plain_log_labels(axis, every_minor: bool = False) -> None:
    """``axis`` (``ax.yaxis``) of a log scale labelled as matplotlib labels it, in plain text; with
    ``every_minor`` (an axis within two decades), each minor tick too (matplotlib labels 2, 3, 4 and 6 of
    a decade only, from 0.4 of one: a panel ticked at 2 and 5 then showed one label), as numbers."""
    axis.set_major_formatter(PlainLogFormatter(decimal=every_minor))
    axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 2) if every_minor else (1, 0.4),
                                               decimal=every_minor))


BAND_PERCENTILES = (2.28, 15.87, 50, 84.13, 97.72)  # TensorBoard's bands: median, +-1 and +-2 sigma
PANEL_TITLES = {"grad": "|dL/dW|", "weight": "W", "act": "A (activations)"}


def distribution_bands(counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``BAND_PERCENTILES`` of each histogram in ``counts`` (shape ``(..., bins)``), shape ``(..., 5)``."""
    flat = counts.reshape(-1, counts.shape[-1])
    bands = [[quantile_from_histogram(c, p / 100, edges) for p in BAND_PERCENTILES] for c in flat]
    return np.array(bands).reshape(*counts.shape[:-1], len(BAND_PERCENTILES))


def save_figure(fig, path: Path, margins: bool = True, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG and close it (its preview kept, within ``previews_kept``)."""
    if margins:  # fixed margins: tight_layout would draw the figure twice (half the cost of a run's plots)
        fig.subplots_adjust(left=0.14, right=0.97, top=0.91, bottom=0.13)
    fig.savefig(path, dpi=dpi, pil_kwargs={"compress_level": FIGURE_COMPRESSION})
    if _previews is not None:  # the pixels just written, still in the canvas: no file to read back
        pixels = fig.canvas.buffer_rgba()
        height, width = pixels.shape[:2]
        whole = Image.frombuffer("RGBA", (width, height), pixels, "raw", "RGBA", 0, 1)
        _previews[path] = whole.reduce(max(1, max(width, height) // PREVIEW_SIDE))
    plt.close(fig)
    return path


PREVIEW_SIDE = 512  # at least twice the side of MLflow's image-record thumbnails (256 px)
_previews: dict[Path, Image.Image] | None = None


@contextlib.contextmanager
def previews_kept():
    """``{path: preview}`` of the figures ``save_figure`` writes within the block: each a copy of its pixels
    reduced to about ``PREVIEW_SIDE`` (by whole factors: box averages, a few ms), which an image record's
    thumbnail is made from instead of the PNG read back (decoding and shrinking each took a fifth of a
    report's figure time, in the process waiting for them; measured)."""
    global _previews
    _previews, kept = {}, _previews
    try:
        yield _previews
    finally:
        _previews = kept

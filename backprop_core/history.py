"""A fit's logged records, kept column by column."""

from __future__ import annotations

import numpy as np

__all__ = ["History"]


class History:
    """The logged records, column by column: one float64 array per key, grown by doubling, so a
    logged step costs 9 bytes per metric (a list of dicts costs ~30 times that).

    ``keep="ends"`` keeps only the first and the last record, for callers that stream the
    records elsewhere (a CSV file, a tracking server) and need bounded memory.
    """

    def __init__(self, keep: str = "all") -> None:
        if keep not in ("all", "ends"):
            raise ValueError(f"keep={keep!r} must be 'all' or 'ends'")
        self.keep = keep
        self.keys: list[str] = []
        self._index: dict[str, int] = {}
        self._values = np.empty((0, 0))
        self._present = np.empty((0, 0), bool)  # a key a record did not have is absent, not NaN
        self._n = 0
        self._layout: tuple[str, ...] = ()  # the last record's keys, and where their values go:
        self._columns = np.empty(0, np.intp)
        self._present_row = np.empty(0, bool)
        self._complete = True  # the last record had every key

    def append(self, record: dict[str, float]) -> None:
        if tuple(record) != self._layout:  # a new key, or another set of keys than the last record's
            self._new_layout(record)
        row = self._n if self.keep == "all" else min(self._n, 1)
        if row >= len(self._values):
            extra = max(8, len(self._values))
            self._values = np.pad(self._values, ((0, extra), (0, 0)), constant_values=np.nan)
            self._present = np.pad(self._present, ((0, extra), (0, 0)), constant_values=False)
        if not self._complete:
            self._values[row] = np.nan
        self._values[row, self._columns] = list(record.values())
        self._present[row] = self._present_row
        self._n += 1

    def _new_layout(self, record: dict[str, float]) -> None:
        new = [key for key in record if key not in self._index]
        if new:
            self._index.update((key, len(self.keys) + i) for i, key in enumerate(new))
            self.keys += new
            self._values = np.pad(self._values, ((0, 0), (0, len(new))), constant_values=np.nan)
            self._present = np.pad(self._present, ((0, 0), (0, len(new))), constant_values=False)
        self._layout = tuple(record)
        self._columns = np.array([self._index[key] for key in record], np.intp)
        self._present_row = np.zeros(len(self.keys), bool)
        self._present_row[self._columns] = True
        self._complete = len(self._columns) == len(self.keys)

    def __len__(self) -> int:
        return self._n if self.keep == "all" else min(self._n, 2)

    def __getitem__(self, i: int | slice) -> dict[str, float] | list[dict[str, float]]:
        """Record ``i`` as the dict it was logged as (a list of them for a slice)."""
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        values, present = self._values[: len(self)][i], self._present[: len(self)][i]
        return {key: (int(v) if key in ("step", "epoch") else float(v))
                for key, v, here in zip(self.keys, values, present) if here}

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def column(self, key: str) -> np.ndarray:
        """The values of ``key`` over the kept records (NaN where a record lacked it)."""
        return self._values[: len(self), self._index[key]]

    def columns(self) -> dict[str, np.ndarray]:
        return {key: self.column(key) for key in self.keys}

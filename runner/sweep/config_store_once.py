"""Hydra's ConfigStore handed to joblib's workers once, through a file, not pickled into every job.

Hydra's joblib launcher sends every job the config loader and the singletons' state, and both hold the
ConfigStore: every structured config registered (Hydra's own, its plugins', our schemas).  It was 100 of
the 134 KB of each job's call, pickled in the launching process and unpickled in a worker for every job,
on the cores the jobs train on.

While a joblib sweep launches (``install`` until ``discard``), loky pickles the store as a reference to a
file in the sweep's directory (``handoff``): registered with loky's ``reduction.register``, not with
``copyreg``, which ``copy.deepcopy`` follows too (Hydra copies the store as it composes).  Each launch
sends new copies of the store (its singletons' state is copied anew): each copy is pickled once, and a
file is written per distinct content.  Each worker reads the file once and restores it into its own
store for each job, where Hydra restored a copy of it (``tests/test_hydra_contract.py`` pins what this
relies on).  A worker that cannot read the file keeps the store its imports made.
"""

from __future__ import annotations

import logging
import pickle
import weakref
from pathlib import Path

from hydra.core.config_store import ConfigStore

from . import handoff

log = logging.getLogger(__name__)
NAME = "config-store"  # its file: .config-store-<pid>-<random>.pkl


class ConfigStoreOnce:
    """While installed, loky pickles ``ConfigStore`` in this process as ``restored(path, digest)``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder  # the sweep's directory
        self.files: dict[str, str] = {}  # digest of a store's configs -> their file
        # id of a store pickled -> (the store, weakly: a search launches hundreds of copies; its file's digest)
        self.pickled: dict[int, tuple[weakref.ref, str]] = {}

    def install(self) -> ConfigStoreOnce:
        global _installed
        from joblib.externals.loky.backend import reduction  # (only joblib's sweeps import joblib)

        reduction.register(ConfigStore, _reduce)
        _installed = self
        return self

    def discard(self) -> None:
        """The store pickles whole again, and its files are removed (the sweep's jobs are done)."""
        global _installed
        if _installed is self:
            _installed = None
        for path in self.files.values():
            Path(path).unlink(missing_ok=True)
        self.files.clear()
        self.pickled.clear()

    def _reduce(self, store: ConfigStore):
        known = self.pickled.get(id(store))
        if known is None or known[0]() is not store:
            try:
                content = pickle.dumps(store.repo)
            except (pickle.PicklingError, TypeError, AttributeError) as err:  # a config only cloudpickle takes
                log.debug("Hydra's ConfigStore does not pickle (%s): sent with every job", err)
                return store.__reduce_ex__(pickle.DEFAULT_PROTOCOL)
            digest = handoff.digest(content)
            if digest not in self.files:
                self.files[digest] = handoff.write(content, self.folder, NAME)
            self.pickled = {key: value for key, value in self.pickled.items() if value[0]() is not None}
            known = self.pickled[id(store)] = (weakref.ref(store), digest)
        return restored, (self.files[known[1]], known[1])


_installed: ConfigStoreOnce | None = None  # the sweep launching in this process


def _reduce(store: ConfigStore):
    return _installed._reduce(store) if _installed else store.__reduce_ex__(pickle.DEFAULT_PROTOCOL)


_read: dict[str, dict | None] = {}  # per process: path -> the store's configs, once


def restored(path: str, digest: str) -> ConfigStore:
    """In a worker: its ConfigStore, holding the configs of the launching process's (read once)."""
    store = ConfigStore.instance()
    if path not in _read:
        content = handoff.read(path, digest)
        _read[path] = pickle.loads(content) if content else None
        if content is None:
            log.warning("%s cannot be read: this worker's jobs use the ConfigStore its imports made", path)
    if _read[path] is not None:
        store.repo = _read[path]
    return store

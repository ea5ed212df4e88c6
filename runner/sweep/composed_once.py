"""Each job of a sweep composed once: Hydra composes a job (~0.2 s) in our checks, again in its
sweeper (to validate the batch), again in the basic launcher, and again in every worker of a
parallel launcher.  The launching process composes it once and hands the result to all of them.

And Hydra composes only what differs in the defaults list: the jobs that choose the same options
(``activation=relu``) share one composition, to which each job's values (``architecture.depth=8``)
are applied with Hydra's own override semantics; ``tests/test_composition.py`` proves the result
equal to Hydra's composition of the whole job, key by key.

This replaces the config loader's ``load_sweep_config`` on the instance: Hydra's sweepers and
launchers call it by that name (``tests/test_hydra_contract.py`` pins it).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import logging
import os
import pickle
import tempfile
from pathlib import Path

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from omegaconf import DictConfig

from ..config.overrides import parsed as parse
from ..processes import process_alive

log = logging.getLogger(__name__)
PREFIX = ".compositions-"  # .compositions-<pid of the launching process>-<random>.pkl


class ComposedOnce:
    """``load_sweep_config`` that composes each job once in this process: our checks, Hydra's
    sweeper and the basic launcher share the composition; every call gets its own copy.

    Pickled (a parallel launcher ships the config loader to its workers), it becomes
    ``ComposedAhead``: the compositions go through one file in the sweep directory
    (``.compositions-*.pkl``), and a worker on this machine reads its job's instead of composing it.
    ``discard()`` removes the file (a sweep killed with -9 leaves it in its directory)."""

    def __init__(self, loader) -> None:
        self.loader = loader
        self.master: DictConfig | None = None  # the sweep's config the compositions below are of
        self.compositions: dict[tuple[str, ...], bytes | DictConfig] = {}  # pickled (see _kept)
        self.bases: dict[tuple[str, ...], bytes | DictConfig] = {}  # Hydra's composition of each choice
        self.shared: str | None = None  # the file that hands them to workers, once written
        self.digest: str | None = None  # its sha256: a worker reads only that file

    @classmethod
    def install(cls, loader) -> ComposedOnce:
        if not isinstance(loader.__dict__.get("load_sweep_config"), cls):
            loader.load_sweep_config = cls(loader)
        return loader.load_sweep_config

    def __call__(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        if master_config is not self.master:  # another sweep (another time stamp, other hydra overrides)
            self.discard()
            self.master, self.compositions, self.bases = master_config, {}, {}
        key = tuple(sweep_overrides)
        if key not in self.compositions:
            self.compositions[key] = _kept(self._compose(master_config, list(sweep_overrides)))
        return _copy(self.compositions[key])

    def _compose(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        """Hydra's composition of the overrides that shape the defaults list (group choices, packages,
        ``hydra.*``), made once per distinct set; then the job's value overrides applied to a copy, as
        Hydra applies them after composing, and the job's own entries in the ``hydra`` node."""
        parsed = parse(sweep_overrides)
        shaping = [self._shapes_defaults(o) for o in parsed]
        values = [o for o, shapes in zip(parsed, shaping) if not shapes]
        compose = type(self.loader).load_sweep_config
        if not values:
            return compose(self.loader, master_config, sweep_overrides)
        key = tuple(o.input_line for o, shapes in zip(parsed, shaping) if shapes)
        if key not in self.bases:
            self.bases[key] = _kept(compose(self.loader, master_config, list(key)))
        config = _copy(self.bases[key])
        ConfigLoaderImpl._apply_overrides_to_config(values, config)
        task = [o for o in parsed if not o.is_hydra_override()]
        config.hydra.overrides.task = [o.input_line for o in task]
        dirname = config.hydra.job.config.override_dirname
        config.hydra.job.override_dirname = get_overrides_dirname(
            overrides=task, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys)
        return config

    def _shapes_defaults(self, override) -> bool:
        """Whether Hydra reads ``override`` while building the defaults list (as its ``Overrides`` class
        sorts them: a config group not given a dict), or it is Hydra's own, or names a package."""
        return override.is_hydra_override() or override.package is not None or (
            self.loader.repository.group_exists(override.key_or_group) and not isinstance(override.value(), dict))

    def discard(self) -> None:
        """Remove the file that hands the compositions to workers (at the end of the sweep)."""
        if self.shared is not None:
            Path(self.shared).unlink(missing_ok=True)
            self.shared = None

    def __reduce__(self):
        if self.shared is None and self.compositions:
            self.shared, self.digest = _write(self.compositions, Path(str(self.master.hydra.sweep.dir)).absolute())
        if self.shared is None:
            return getattr, (self.loader, "load_sweep_config")  # Hydra's own method
        return ComposedAhead, (self.loader, self.shared, self.digest)


def _kept(config: DictConfig) -> bytes | DictConfig:
    """A composition as kept: pickled (a copy is then 4 times faster to make than a deepcopy), or the
    config itself where it does not pickle."""
    try:
        return pickle.dumps(config)
    except (pickle.PicklingError, TypeError, AttributeError) as err:
        log.debug("a composition does not pickle (%s): kept as it is, its workers compose it", err)
        return config


def _copy(kept: bytes | DictConfig) -> DictConfig:
    return pickle.loads(kept) if isinstance(kept, bytes) else copy.deepcopy(kept)


def _write(compositions: dict[tuple[str, ...], bytes | DictConfig], folder: Path) -> tuple[str | None, str | None]:
    """The compositions, each pickled, in a new file in ``folder`` (its name is the sweep's own: a
    worker serving several sweeps never reads another's), and the file's digest; (None, None) if one
    does not pickle.  Files that sweeps killed with -9 left in ``folder`` are removed first."""
    if not all(isinstance(kept, bytes) for kept in compositions.values()):
        return None, None
    content = pickle.dumps(compositions)
    folder.mkdir(parents=True, exist_ok=True)  # the launcher makes it too
    remove_stale(folder)
    descriptor, path = tempfile.mkstemp(prefix=f"{PREFIX}{os.getpid()}-", suffix=".pkl", dir=folder)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    return path, hashlib.sha256(content).hexdigest()


def remove_stale(folder: Path) -> None:
    """The compositions files in ``folder`` whose sweep's process is gone (killed with -9)."""
    for path in folder.glob(f"{PREFIX}*.pkl"):
        pid = path.name.removeprefix(PREFIX).split("-")[0]
        if not pid.isdigit() or not process_alive(int(pid)):
            path.unlink(missing_ok=True)


class ComposedAhead:
    """A worker's ``load_sweep_config``: the launching process's composition of the job, read from
    ``path`` (once per process), or Hydra's own composition where the file is not there (a worker
    on another machine) or does not hold the job."""

    _read: dict[str, dict[tuple[str, ...], bytes]] = {}  # per process: path -> pickled compositions

    def __init__(self, loader, path: str, digest: str) -> None:
        self.loader, self.path, self.digest = loader, path, digest

    def __call__(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        composed = self._compositions().get(tuple(sweep_overrides))
        if composed is None:
            return type(self.loader).load_sweep_config(self.loader, master_config, sweep_overrides)
        return pickle.loads(composed)  # a fresh object: the launcher sets the job's number in it

    def _compositions(self) -> dict[tuple[str, ...], bytes]:
        if self.path not in self._read:
            try:
                content = Path(self.path).read_bytes()
            except OSError:
                content = b""
            # unpickled only if it is the file the launching process wrote (pickle runs what it reads)
            trusted = content and hmac.compare_digest(hashlib.sha256(content).hexdigest(), self.digest)
            self._read[self.path] = pickle.loads(content) if trusted else {}
        return self._read[self.path]

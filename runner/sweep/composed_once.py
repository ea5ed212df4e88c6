"""A sweep's jobs composed once per distinct choice of options: Hydra composes each job (~0.2 s) in our
checks, again in the basic launcher, and again in every worker of a parallel launcher.

Hydra composes only what differs in the defaults list: the jobs that choose the same options
(``activation=relu``) share one composition, made once in the launching process, to which each job's
values (``architecture.depth=8``) are applied with Hydra's own override semantics (~2 ms); workers
get the compositions through a file.  Hydra makes each composition from config files it read once
(``parsed_once``).  ``tests/test_composition.py`` proves the result equal to
Hydra's composition of the whole job, key by key.

This replaces the config loader's ``load_sweep_config`` on the instance: Hydra's sweepers and
launchers call it by that name (``tests/test_hydra_contract.py`` pins it).
"""

from __future__ import annotations

import copy
import logging
import pickle
from pathlib import Path

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from omegaconf import DictConfig, open_dict

from ..config.overrides import parsed as parse
from . import handoff
from .parsed_once import ParsedOnce, composed_by_hydra

log = logging.getLogger(__name__)


class _Composer:
    """A job's composition: Hydra's composition of the overrides that shape the defaults list (group
    choices, packages, ``hydra.*``), made once per distinct set (``base``); then the job's value
    overrides applied to a copy, as Hydra applies them after composing, and the job's own entries in
    the ``hydra`` node, with what the sweep tells every job (``job_env``, in ``hydra.job.env_set``)."""

    def __init__(self, loader, job_env: dict[str, str] | None = None) -> None:
        self.loader = loader
        self._shaping: dict[str, bool] = {}  # override -> whether it shapes the defaults list
        # what every job of the sweep is told (``hydra.job.env_set``: Hydra's run_job sets it around the job,
        # on any launcher, where a worker started apart, a Ray node's, inherits nothing from this process)
        self.job_env = dict(job_env or {})

    def base(self, master_config: DictConfig, shaping: tuple[str, ...]) -> DictConfig:
        raise NotImplementedError

    def split(self, parsed: list) -> tuple[tuple[str, ...], list]:
        """The overrides that shape the defaults list (as typed), and the value overrides."""
        shapes = [self.shapes_defaults(o) for o in parsed]
        return (tuple(o.input_line for o, s in zip(parsed, shapes) if s),
                [o for o, s in zip(parsed, shapes) if not s])

    def shapes_defaults(self, override) -> bool:
        """Whether Hydra reads ``override`` while building the defaults list (as its ``Overrides`` class
        sorts them: a config group not given a dict), or it is Hydra's own, or names a package."""
        line = override.input_line
        if line not in self._shaping:
            self._shaping[line] = override.is_hydra_override() or override.package is not None or (
                self.loader.repository.group_exists(override.key_or_group) and not isinstance(override.value(), dict))
        return self._shaping[line]

    def compose(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        parsed = parse(sweep_overrides)
        shaping, values = self.split(parsed)
        config = self.base(master_config, shaping)
        if values:
            ConfigLoaderImpl._apply_overrides_to_config(values, config)
        task = [o for o in parsed if not o.is_hydra_override()]
        config.hydra.overrides.task = [o.input_line for o in task]
        dirname = config.hydra.job.config.override_dirname
        config.hydra.job.override_dirname = get_overrides_dirname(
            overrides=task, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys)
        if self.job_env:
            with open_dict(config.hydra.job.env_set):
                config.hydra.job.env_set.update(self.job_env)
        return config


class ComposedOnce(_Composer):
    """``load_sweep_config`` that composes each distinct choice of options once in this process (our
    checks, Hydra's sweeper and launcher share it); every call gets its own copy.

    Pickled (a parallel launcher ships the config loader to its workers), it becomes
    ``ComposedAhead``: the compositions of each choice go through one file in the sweep directory
    (``.compositions-*.pkl``), and a worker on this machine applies its job's values to a copy instead of
    composing it.  ``discard()`` removes the file (a sweep killed with -9 leaves it in its directory)."""

    def __init__(self, loader) -> None:
        super().__init__(loader)
        self.master: DictConfig | None = None  # the sweep's config the compositions below are of
        self.bases: dict[tuple[str, ...], bytes | DictConfig] = {}  # pickled (see _kept)
        self.parsed: ParsedOnce | None = None  # the config files they are composed of, each read once
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
            self.master, self.bases, self.parsed = master_config, {}, ParsedOnce(self.loader.repository)
        return self.compose(master_config, list(sweep_overrides))

    def base(self, master_config: DictConfig, shaping: tuple[str, ...]) -> DictConfig:
        if shaping not in self.bases:
            self.bases[shaping] = _kept(composed_by_hydra(self.loader, self.parsed, master_config, list(shaping)))
        return _copy(self.bases[shaping])

    def discard(self) -> None:
        """Remove the file that hands the compositions to workers (at the end of the sweep)."""
        if self.shared is not None:
            Path(self.shared).unlink(missing_ok=True)
            self.shared = None

    def __reduce__(self):
        if self.shared is None and self.bases:
            self.shared, self.digest = _write(self.bases, Path(str(self.master.hydra.sweep.dir)).absolute())
        # without a file (nothing composed yet, or a composition that does not pickle) the worker composes
        # each job as Hydra does, and still tells it what the sweep tells every job
        return ComposedAhead, (self.loader, self.shared, self.digest, self.job_env)


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
    """The compositions, each pickled, in a new file in ``folder`` (``handoff``), and the file's digest;
    (None, None) if one does not pickle."""
    if not all(isinstance(kept, bytes) for kept in compositions.values()):
        return None, None
    content = pickle.dumps(compositions)
    return handoff.write(content, folder, "compositions"), handoff.digest(content)


class ComposedAhead(_Composer):
    """A worker's ``load_sweep_config``: the job's values applied to the launching process's composition
    of its options, read from ``path`` (once per process), or Hydra's own composition of them where the
    file is not there (a worker on another machine) or does not hold them."""

    _read: dict[str, dict[tuple[str, ...], bytes]] = {}  # per process: path -> pickled compositions

    def __init__(self, loader, path: str | None, digest: str | None, job_env: dict[str, str] | None = None) -> None:
        super().__init__(loader, job_env)
        self.path, self.digest = path, digest

    def __call__(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        return self.compose(master_config, list(sweep_overrides))

    def base(self, master_config: DictConfig, shaping: tuple[str, ...]) -> DictConfig:
        composed = self._compositions().get(shaping)
        if composed is None:
            return type(self.loader).load_sweep_config(self.loader, master_config, list(shaping))
        return pickle.loads(composed)  # a fresh object: the job's values and number are set in it

    def _compositions(self) -> dict[tuple[str, ...], bytes]:
        if self.path is None:
            return {}
        if self.path not in self._read:
            content = handoff.read(self.path, self.digest)
            self._read[self.path] = pickle.loads(content) if content else {}
        return self._read[self.path]

"""Hydra's config repository with each config read and parsed once per sweep, for ``composed_once``'s
compositions (one per distinct choice of options: 9 for ``vanishing_depth``).

Hydra composes every job from nothing: it deep-copies its repository, and with it the ConfigStore (every
registered schema), then reads and parses each YAML file of the defaults list again.  That is 40 % of a
composition here (93 → 57 ms for a ``vanishing_depth`` job, measured), paid in the launching process while
the sweep is checked, before the first job.  ``ParsedOnce`` keeps each loaded config pickled, and hands
every composition a fresh copy of it (Hydra merges loaded configs into the job's without copying them);
its own copy for each composition shares the sources, which Hydra copies only so that a
``hydra.searchpath`` can replace them (``initialize_sources``): that replaces the copy's list, and
leaves the sources themselves and the ConfigStore (a singleton) as they are.
``tests/test_composition.py`` proves the compositions equal to Hydra's own, key by key.
"""

from __future__ import annotations

import copy
import pickle
from typing import Optional

from hydra._internal.config_repository import IConfigRepository
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigResult, ConfigSource


class ParsedOnce(IConfigRepository):
    """A repository that loads each config of its sources once: later loads unpickle a copy."""

    def __init__(self, delegate: IConfigRepository, loaded: dict | None = None) -> None:
        self.delegate = delegate
        # (the sources, a config's path) -> the config's first load, pickled (None where it does not pickle)
        self.loaded: dict[tuple, bytes | None] = {} if loaded is None else loaded

    def __deepcopy__(self, memo: dict) -> ParsedOnce:
        """What ``CachingConfigRepository`` makes for each composition: a repository whose sources it may
        replace, sharing what was loaded."""
        return ParsedOnce(copy.copy(self.delegate), self.loaded)

    def load_config(self, config_path: str) -> Optional[ConfigResult]:
        key = (tuple((type(s).__name__, s.provider, s.path) for s in self.delegate.get_sources()), config_path)
        kept = self.loaded.get(key)
        if kept is not None:
            return pickle.loads(kept)
        result = self.delegate.load_config(config_path)
        if key not in self.loaded:  # (tried once: a config that does not pickle is loaded every time)
            try:
                self.loaded[key] = pickle.dumps(result)
            except (pickle.PicklingError, TypeError, AttributeError):
                self.loaded[key] = None
        return result

    def get_schema_source(self) -> ConfigSource:
        return self.delegate.get_schema_source()

    def group_exists(self, config_path: str) -> bool:
        return self.delegate.group_exists(config_path)

    def config_exists(self, config_path: str) -> bool:
        return self.delegate.config_exists(config_path)

    def get_group_options(self, group_name: str,
                          results_filter: Optional[ObjectType] = ObjectType.CONFIG) -> list[str]:
        return self.delegate.get_group_options(group_name, results_filter)

    def get_sources(self) -> list[ConfigSource]:
        return self.delegate.get_sources()

    def initialize_sources(self, config_search_path) -> None:
        self.delegate.initialize_sources(config_search_path)


def composed_by_hydra(loader, parsed: ParsedOnce, master_config, overrides: list[str]):
    """Hydra's own ``load_sweep_config`` of ``overrides``, on ``parsed`` (over the loader's repository)."""
    repository = loader.repository
    loader.repository = parsed
    try:
        return type(loader).load_sweep_config(loader, master_config, overrides)
    finally:
        loader.repository = repository

"""A sweep's jobs, expanded as Hydra's basic sweeper expands them, each composed and checked
before the first starts; and the keys whose value varies between them (what a run's name says)."""

from __future__ import annotations

import math
import re

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Glob, IntervalSweep, OverrideType, RangeSweep
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from ..config.checks import check_config, check_values, literal_values, task_config, with_assigned
from ..config.errors import ConfigError
from ..config.hydra_errors import hydra_error, is_composition_error
from ..config.overrides import key_values, parsed as parse, typed_overrides
from ..config.schema import GRID_SWEEPERS
from ..run.build import BuiltRun, build_once, datasets_shared
from .composed_once import ComposedOnce
from .launch_order import expected_work


def check_sweep_dirs(config: DictConfig, n_jobs: int) -> None:
    """Jobs of one sweep get folders of their own: a ``hydra.sweep.subdir`` that is the same for
    every job would have them write over each other's history and records."""
    subdir = str(OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir"))
    if n_jobs > 1 and not any(part in subdir for part in ("hydra.job.num", "hydra.job.id", "hydra.job.override_dirname")):
        raise ConfigError(f"hydra.sweep.subdir={subdir}", f"is the same for all {n_jobs} jobs, which would write into "
                          "one folder: include ${hydra.job.num} (the default)")


def sweep_jobs(config: DictConfig, loader) -> list[list[str]]:
    """The override list of every job the sweep will launch, as Hydra's basic sweeper expands it
    (``glob()`` lists the group's options through ``loader``).  Other sweepers (Optuna) draw their
    jobs as they go: then only the fixed overrides are known."""
    basic = config.hydra.sweeper.get("_target_") in GRID_SWEEPERS
    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()] if basic else []
    parser = OverridesParser.create(config_loader=loader)
    overrides = parser.parse_overrides(params + typed_overrides(config.hydra))
    if not basic:
        return BasicSweeper.split_arguments([o for o in overrides if not o.is_sweep_override()], None)[0]
    for override in overrides:
        _check_basic_sweep(override, loader)
    _check_size(overrides, config.max_jobs)
    return BasicSweeper.split_arguments(overrides, None)[0]


def _check_size(overrides, max_jobs: int) -> None:
    """A grid of more than ``max_jobs`` jobs is refused before it is expanded: counted from its sweeps'
    lengths (a ``range()`` by arithmetic), so ``range(1,100000000)`` is refused at once.  A key's last
    override is the one expanded, as the basic sweeper expands them: the command line's over a preset's."""
    if max_jobs < 1:
        raise ConfigError(f"max_jobs={max_jobs}", "must be an integer >= 1")
    last = {o.get_key_element(): o for o in overrides}
    sizes = {o.input_line: _length(o) for o in last.values() if o.is_sweep_override()}
    count = math.prod(sizes.values())
    if count > max_jobs:
        grid = f" ({' x '.join(sizes)})" if sizes else ""
        raise ConfigError(f"max_jobs={max_jobs}", f"this sweep would be {count} job{'s' * (count != 1)}{grid}; "
                                                  "raise max_jobs to run it, e.g. max_jobs=" + str(count))


def _length(override) -> int:
    value = override.value()
    if isinstance(value, RangeSweep):
        return max(0, math.ceil((value.stop - value.start) / value.step))
    return sum(1 for _ in override.sweep_string_iterator())


def _check_basic_sweep(override, loader) -> None:
    """A sweep the basic sweeper can expand into at least one value (it would fail on an
    ``interval()``, compose a glob listed among values as a dict, and run nothing for an empty one)."""
    value, key = override.value(), override.key_or_group
    if isinstance(value, IntervalSweep):
        raise ConfigError(override.input_line, "interval() is drawn from by a sampling sweeper "
                          "(hydra/sweeper=optuna); the basic sweeper takes a,b,c, range() and glob()")
    if isinstance(value, ChoiceSweep) and any(isinstance(v, Glob) for v in value.list):
        raise ConfigError(override.input_line, "a glob() is a whole sweep, not one value among others: "
                          f"put every pattern in one, {key}=glob([a*,b,...])")
    if isinstance(value, RangeSweep) and value.step == 0:
        raise ConfigError(override.input_line, "a range() needs a step other than 0")
    if override.is_sweep_override() and next(iter(override.sweep_string_iterator()), None) is None:
        options = loader.get_group_options(key) if isinstance(value, Glob) else []
        rule = f"matches no option of {key} ({', '.join(options)})" if options else "sweeps over no value"
        raise ConfigError(override.input_line, f"{rule}: the sweep would run nothing")


def check_sweep(config: DictConfig, loader, jobs: list[list[str]]) -> dict[tuple[str, ...], int]:
    """Compose and check every job of the sweep (``jobs``: ``sweep_jobs``'s) before the first starts.  The
    first invalid job is a ConfigError naming its number and overrides.  Returns each job's expected work
    (``launch_order.expected_work``), by its overrides."""
    checker = JobChecker(config, loader)
    # a bar once the checks take over a second, on a terminal only (disable=None: tqdm's rule; a log file
    # would get a line per update)
    bar = tqdm(jobs, desc="checking the sweep's jobs", unit="job", delay=1.0, leave=False, disable=None)
    with datasets_shared():  # a job's dataset is often the job's before: read, not generated again
        for num, overrides in enumerate(bar):
            typed = re.sub(r"\\(.)", r"\1", " ".join(overrides))  # as typed: Hydra escapes what it re-parses
            checker.check(list(overrides), f"job #{num} of {len(jobs)} ({typed or 'no overrides'})")
    return checker.work


class JobChecker:
    """Checks a sweep's jobs one after another, each as ``check_job`` would, in ~1 ms where ``check_job``
    takes ~20: a job whose overrides are those of a job checked before, but for the values they assign
    to existing keys, is checked on that job's config with its own values assigned (Hydra's override
    semantics).  Its structure (groups and keys) is that job's, already checked; its values are
    resolved and checked, and its run built, as any job's.  A job that fails on this path is checked
    again whole, so that its error is exactly ``check_job``'s (``tests/test_composition.py`` compares
    the verdicts of the two paths on random sweeps)."""

    def __init__(self, config: DictConfig, loader) -> None:
        self.config, self.loader = config, loader
        self.composer = ComposedOnce.install(loader)
        # kind -> (task config of its last job, its values, its plain values where none interpolates)
        self.last: dict[tuple, tuple[DictConfig, list, dict | None]] = {}
        self.work: dict[tuple[str, ...], int] = {}  # each job checked (its overrides) -> its expected work

    def check(self, overrides: list[str], where: str) -> dict | None:
        """Checks the job of ``overrides``; returns its plain values where it went the short way (else None)."""
        kind, values = self._kind(overrides)
        if kind not in self.last:
            return self._checked_whole(kind, values, overrides, where)
        task, before, literal = self.last[kind]
        changed = [o for o, b in zip(values, before) if o.input_line != b.input_line]
        try:
            ConfigLoaderImpl._apply_overrides_to_config(changed, task)
            # resolving the whole config again is half a short check: where nothing interpolates, only the
            # assigned keys' values change
            literal = literal and with_assigned(task, literal, [o.key_or_group for o in changed])
            resolved = check_values(task, literal)
            built = build_once(resolved)
        except Exception:  # noqa: BLE001 (any: the whole check below says what, or finds nothing)
            del self.last[kind]  # its values are now in doubt
            return self._checked_whole(None, values, overrides, where)
        self.last[kind] = (task, values, literal)
        self.work[tuple(overrides)] = expected_work(built)
        return resolved

    def _checked_whole(self, kind: tuple | None, values: list, overrides: list[str], where: str) -> None:
        task, built = check_job(self.config, self.loader, overrides, where)
        if kind is not None:
            self.last[kind] = (task, values, literal_values(task))
        self.work[tuple(overrides)] = expected_work(built)

    def _kind(self, overrides: list[str]) -> tuple[tuple | None, list]:
        """Jobs of one kind have the same options chosen and assign values to the same keys, each a plain
        ``key=value`` of a value that is not a dict (merged, not assigned) nor an option's ``name``
        (the structure's check reads it): ``(None, [])`` for a job that is not of that form."""
        try:
            shaping, values = self.composer.split(parse(overrides))
        except Exception:  # noqa: BLE001 (the whole check says what does not parse)
            return None, []
        keys = tuple(o.key_or_group for o in values)
        simple = len(set(keys)) == len(keys) and all(
            o.type is OverrideType.CHANGE and not o.is_sweep_override() and o.package is None
            and not isinstance(o.value(), dict) and o.key_or_group.rpartition(".")[2] != "name" for o in values)
        return ((shaping, keys), values) if simple else (None, [])


def varying_keys(jobs: list[list[str]]) -> list[str]:
    """The keys whose value differs between the jobs: what a job's run name needs to say."""
    per_job = [key_values(overrides) for overrides in jobs]
    keys = dict.fromkeys(key for job in per_job for key in job)
    return [key for key in keys if len({job.get(key) for job in per_job}) > 1]


def check_job(config: DictConfig, loader, overrides: list[str], where: str) -> tuple[DictConfig, BuiltRun]:
    """Compose the job of ``overrides`` and check it; a ConfigError ends with ``[where]``.  Returns the job's
    task config (its own copy) and its build."""
    try:
        task = task_config(loader.load_sweep_config(config, overrides), owned=True)  # a fresh copy: ours
        return task, build_once(check_config(task))
    except ConfigError as err:
        raise ConfigError(f"{err} [{where}]") from None
    except Exception as err:  # Hydra's or OmegaConf's composition errors
        if not is_composition_error(err):
            raise
        raise ConfigError(f"{hydra_error(err, overrides)} [{where}]") from None

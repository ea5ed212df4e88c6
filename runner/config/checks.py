"""Checks before any work and before anything is written: every group chosen, every key taken,
every interpolation resolvable, every number finite, the run buildable (its memory included), Hydra's
own settings sound.  ``runner.sweep.callback`` calls them before Hydra creates a run directory, so a
rejected command leaves nothing behind: no MLflow run, no directory."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import InterpolationKeyError, InterpolationResolutionError

from ..files import write_error
from .errors import ConfigError
from .hydra_errors import resolution_rule
from .keys import check_keys
from .options import option_schemas
from .overrides import key_values, parsed, readable_key_values, typed_overrides
from .schema import GROUPS

# Hydra's groups that it reads without a fallback: deleted, Hydra (or we) fail on a missing value later
HYDRA_REQUIRED = ("hydra/job_logging", "hydra/hydra_logging", "hydra/sweeper")
LOG_LEVELS = ("CRITICAL", "FATAL", "ERROR", "WARN", "WARNING", "INFO", "DEBUG", "NOTSET")


def task_config(config: DictConfig, owned: bool = False) -> DictConfig:
    """``config`` without its ``hydra`` node: what the task function sees.  ``owned``: the caller's own
    copy, whose node is removed in place (a deepcopy costs ~6 ms, most of a job's check)."""
    task = config if owned else copy.deepcopy(config)
    with read_write(task), open_dict(task):
        task.pop("hydra", None)
    return task


def check_config(cfg: DictConfig) -> dict:
    """Every check of a task config short of building the run (``runner.run.build`` checks the rest, and
    the memory); raises ConfigError.  Returns the config resolved into plain values."""
    check_groups(cfg)
    resolved = check_resolvable(cfg)
    check_keys(cfg)  # after the interpolations: it reads values
    check_given(cfg, resolved)
    return resolved


def check_values(cfg: DictConfig, resolved: dict | None = None) -> dict:
    """``check_config`` short of its checks of the config's shape (every group chosen, every key one the
    options take): for a sweep's job that differs from one checked whole only in the values it assigns to
    existing keys (not a ``name``).  Returns the config resolved into plain values (``resolved``, where the
    caller has them: ``with_assigned``)."""
    if resolved is None:
        resolved = check_resolvable(cfg)
    check_given(cfg, resolved)
    return resolved


def literal_values(cfg: DictConfig) -> dict | None:
    """``cfg`` as plain values, as ``check_resolvable`` gives it, where no value is an interpolation: then a
    value assigned to a key changes that key's value only (``with_assigned``).  None where one is."""
    plain = OmegaConf.to_container(cfg, resolve=False, throw_on_missing=False)
    return None if _interpolates(plain) else plain


def with_assigned(cfg: DictConfig, literal: dict, keys: list[str]) -> dict | None:
    """``literal`` (``literal_values`` of ``cfg`` before values were assigned to ``keys``, existing keys) with
    those keys' values read back from ``cfg``, as OmegaConf converted them: equal to ``check_resolvable(cfg)``
    at a fraction of its cost (it converts the whole config).  None where an assigned value interpolates."""
    for key in keys:
        path, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(cfg, path) if path else cfg
        if not OmegaConf.is_dict(parent) or OmegaConf.is_interpolation(parent, leaf):
            return None
        value = "???" if OmegaConf.is_missing(parent, leaf) else parent[leaf]
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=False, throw_on_missing=False)
            if _interpolates(value):
                return None
        node = literal
        for part in path.split(".") if path else []:
            node = node[part]
        node[leaf] = value
    return literal


def _interpolates(node) -> bool:
    if isinstance(node, dict):
        return any(_interpolates(value) for value in node.values())
    if isinstance(node, list):
        return any(_interpolates(value) for value in node)
    return isinstance(node, str) and "${" in node


def check_given(cfg: DictConfig, resolved: dict) -> None:
    """Every value of the ``resolved`` config given (none left ``???``) and every number finite."""
    for key in missing_keys(resolved):
        group = key.split(".")[0]
        raise ConfigError(f"{key}=???", f"{group}={cfg[group].get('name', group)} needs a value for {key}: "
                                        "give it on the command line or in a preset")
    check_finite(resolved)


def missing_keys(resolved: dict) -> list[str]:
    """The keys of a ``resolved`` config that were left ``???`` (OmegaConf's ``missing_keys``, sorted,
    read from the plain values: ~100 times faster)."""
    found = []

    def walk(node, prefix: str) -> None:
        for key, value in (node.items() if isinstance(node, dict) else enumerate(node)):
            path = f"{prefix}[{key}]" if isinstance(node, list) else f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, (dict, list)):
                walk(value, path)
            elif value == "???":
                found.append(path)

    walk(resolved, "")
    return sorted(found)


def check_groups(cfg: DictConfig) -> None:
    """No required group was deleted (``~optimizer``): each has an option chosen."""
    for group in GROUPS:
        if OmegaConf.is_missing(cfg, group) or group not in cfg:
            options = sorted(option for g, option in option_schemas() if g == group)
            raise ConfigError(f"~{group}", f"{group} is a required group: choose one of its options "
                                           f"({', '.join(options)}) instead of deleting it")


def check_resolvable(cfg: DictConfig) -> dict:
    """Every interpolation resolves: a key that does not exist (``${oops}``), one that refers to itself
    (``seed=${seed}``), an environment variable that is not set (``${oc.env:UNSET}``); returns the
    resolved config as plain values."""
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except (InterpolationResolutionError, InterpolationKeyError) as err:
        key = str(err.full_key)
        raise ConfigError(f"{key}={raw_value(cfg, key)}", f"cannot be resolved: {resolution_rule(err)}") from None


def raw_value(cfg: DictConfig, key: str) -> str:
    """The value of ``key`` as written, interpolations unresolved (``${oops}``)."""
    node = OmegaConf.to_container(cfg, resolve=False, throw_on_missing=False)
    for part in re.findall(r"[^.\[\]]+", key):
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            return "?"
    return str(node)


def check_finite(resolved: dict) -> None:
    """Every number of the ``resolved`` config is finite: ``optimizer.lr=inf`` or ``1e400`` is a bad input,
    not a divergence."""
    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{prefix}{key}={value}", "must be a finite number")

    walk(resolved, "")


def check_single_run(config: DictConfig) -> DictConfig:
    """A single run's config (with its ``hydra`` node): a sweep preset needs ``-m`` unless the
    command picks one value for each key it sweeps; returns the task config it checked."""
    swept = dict(config.hydra.sweeper.get("params") or {})
    given = set(key_values(typed_overrides(config.hydra)))
    unpicked = [key for key in swept if key not in given]
    if unpicked:
        preset = config.hydra.runtime.choices.get("experiment")
        raise ConfigError(f"experiment={preset}",
                          f"this preset is a sweep over {', '.join(f'{k}={swept[k]}' for k in unpicked)}; "
                          f"run it with -m (backprop-lab -m experiment={preset}), or pick one value for "
                          f"{', '.join(unpicked)}")
    task = task_config(config)
    check_config(task)
    return task


def check_hydra(config: DictConfig, multirun: bool) -> None:
    """What Hydra or a plugin would otherwise fail on with a traceback once the checks passed: an
    output folder that cannot be created, a joblib launcher of no worker, an Optuna search of no trial."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    folder = str(OmegaConf.select(config, key))
    if error := write_error(Path(folder), folder=True):
        raise ConfigError(f"{key}={folder}", f"cannot be created ({error})")
    if config.tracking.name == "none":
        check_no_earlier_records(Path(folder), key, multirun)
    check_logging(config)
    if not multirun:
        return
    launcher = config.hydra.launcher
    if launcher.get("_target_", "").endswith("JoblibLauncher"):
        if launcher.n_jobs == 0:
            raise ConfigError("hydra.launcher.n_jobs=0", "must be a number of workers >= 1, or -1 for every core")
        for key, honoured in (("backend", (None, "loky")), ("prefer", ("processes",)), ("require", (None,))):
            if launcher.get(key) not in honoured:
                raise ConfigError(f"hydra.launcher.{key}={launcher.get(key)}", "Hydra's joblib launcher always runs "
                                  "jobs in loky worker processes and would ignore it: leave it unset")
    if config.hydra.sweeper.get("_target_", "").endswith("OptunaSweeper"):
        for name in ("n_trials", "n_jobs"):
            if (value := config.hydra.sweeper.get(name)) is not None and value < 1:
                raise ConfigError(f"hydra.sweeper.{name}={value}", "must be an integer >= 1")


def check_no_earlier_records(folder: Path, key: str, multirun: bool) -> None:
    """With ``tracking=none`` a run's records are its folder's files only: a fixed ``hydra.run.dir`` or
    ``hydra.sweep.dir`` that an earlier command wrote into would have them overwritten, or (a sweep of fewer
    jobs) mixed with this one's in the report of the folder.  (With MLflow the records are the store's and each
    sweep is told apart by its own id, so a folder may be used again.)"""
    earlier = folder / ("multirun.yaml" if multirun else "history.csv")  # written by every sweep, by every run
    if earlier.exists():
        what = "sweep" if multirun else "run"
        raise ConfigError(f"{key}={folder}", f"holds an earlier {what}'s records ({earlier.name}), which tracking=none "
                          f"keeps only there and this {what} would write over: choose another folder (the default "
                          "is new for every command), or remove it")


def check_logging(config: DictConfig) -> None:
    """Every level in a job's logging config is one ``logging`` knows (Hydra would fail on it after
    creating the run directory; Hydra's own, ``hydra_logging``, is checked on the command line, as
    Hydra applies it first: ``logging_level_problem``)."""
    tree = OmegaConf.to_container(config.hydra.job_logging, resolve=False) or {}
    places = [("root", tree.get("root") or {})]
    places += [(f"{part}.{name}", entry or {}) for part in ("loggers", "handlers")
               for name, entry in (tree.get(part) or {}).items()]
    for place, entry in places:
        level = entry.get("level") if isinstance(entry, dict) else None
        if level is not None and not isinstance(level, int) and str(level).upper() not in LOG_LEVELS:
            raise ConfigError(f"hydra.job_logging.{place}.level={level}",
                              f"must be a logging level: {', '.join(LOG_LEVELS)}")


def deletion_problem(overrides: list[str]) -> str | None:
    """A ``~key`` on the command line that deletes a key, not a group's choice (``~optimizer``, which the
    composed config's check refuses with the group's options) or one of Hydra's own settings: every key
    is one the chosen options take, so none can go (Hydra's own error names its schema class, or none);
    nor can a choice Hydra needs (``~hydra/sweeper``: a traceback of a missing value, in Hydra too)."""
    try:
        deletions = [o for o in parsed(overrides) if o.is_delete()]
    except OverrideParseException:
        return None  # Hydra says why when it composes
    for override in deletions:
        key = override.key_or_group
        if key in HYDRA_REQUIRED:
            return (f"{override.input_line}: Hydra needs a choice for {key}: choose one instead of deleting it "
                    f"(--hydra-help lists them)")
        if key.split("/")[0] not in (*GROUPS, "experiment", "hydra") and not key.startswith("hydra."):
            return (f"{override.input_line}: keys are not deleted: the config holds exactly the keys its "
                    f"chosen options take; set a key's value instead")
    return None


def repeated_keys(overrides: list[str]) -> list[str]:
    """What to say of each key (or group) given twice on the command line: Hydra keeps the last and dropped
    the other without a word (``-m activation=relu,sigmoid activation=tanh`` ran one job).  Not refused: a
    script's or an alias's own overrides followed by the user's is a common way to run.  (A preset's sweep
    of a key that the command line sets is not a repeat: the command line narrows it, as Hydra documents.)"""
    first: dict[tuple, str] = {}
    said = []
    for line in overrides:
        try:
            (override,) = parsed([line])
        except OverrideParseException:
            continue  # Hydra says why when it composes (or it is the value of a flag: --cfg job)
        key = (override.key_or_group, override.package)
        if key in first:
            said.append(f"{override.get_key_element().lstrip('+~')} is given twice ({first[key]}, then "
                        f"{override.input_line}): the last is kept")
        first[key] = override.input_line
    return said


def logging_level_problem(overrides: list[str]) -> str | None:
    """A ``hydra.*_logging...level=X`` on the command line that ``logging`` does not know, as one line."""
    for key, value in readable_key_values(overrides).items():
        if re.fullmatch(r"hydra\.(hydra|job)_logging\..*level", key) and value.upper() not in LOG_LEVELS:
            return f"{key}={value}: must be a logging level: {', '.join(LOG_LEVELS)}"
    return None



"""Checks before any work and before anything is written: every key taken, every value within
its rules, the memory it needs, the tracking store reachable; for a sweep, every job's config.

Hydra calls these from ``runner.callbacks.Lifecycle`` before it creates a run directory, so a
rejected command leaves nothing behind: no MLflow run, no directory.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import InterpolationKeyError, InterpolationResolutionError

from .build import build
from .errors import ConfigError, hydra_error, one_line
from .schema import GROUPS, check_keys, option_schemas
from .records import description_of
from .stores import MAX_TAG_VALUE, check_experiment_name, check_store, resolve_uri, write_error

RUN_FIGURES = ("auto", "always", "never")
REPORT = ("auto", "never")
LOG_LEVELS = ("CRITICAL", "FATAL", "ERROR", "WARN", "WARNING", "INFO", "DEBUG", "NOTSET")


def task_config(config: DictConfig) -> DictConfig:
    """``config`` without its ``hydra`` node: what the task function sees."""
    task = copy.deepcopy(config)
    with read_write(task), open_dict(task):
        task.pop("hydra", None)
    return task


def check_config(cfg: DictConfig) -> None:
    """Every check a run makes before it trains, on a task config; raises ConfigError."""
    check_groups(cfg)
    resolved = check_resolvable(cfg)
    check_keys(cfg)
    for key in sorted(OmegaConf.missing_keys(cfg)):
        group = key.split(".")[0]
        raise ConfigError(f"{key}=???", f"{group}={cfg[group].get('name', group)} needs a value for {key}: "
                                        "give it on the command line or in a preset")
    check_finite(resolved)
    build(cfg)


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
        raise ConfigError(f"{key}={raw_value(cfg, key)}", f"cannot be resolved: {_resolution_rule(err)}") from None


def _resolution_rule(err: Exception) -> str:
    text = one_line(str(getattr(err, "msg", None) or err).split("\n")[0])
    if "Recursive interpolation" in text:
        return "it refers to itself"
    if m := re.search(r"Environment variable '([^']+)' not found", text):
        return (f"the environment variable {m.group(1)} is not set (set it, or give a default: "
                f"${{oc.env:{m.group(1)},default}})")
    return text[0].lower() + text[1:] if text else type(err).__name__


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


def typed_overrides(hydra_node) -> list[str]:
    """The command line's overrides as typed: ``description=${oc.env:TOKEN}`` stays so (read through
    OmegaConf it would resolve, and a secret would reach the run's name and tags)."""
    return [str(o) for o in OmegaConf.to_container(hydra_node.overrides.task, resolve=False)]


def check_single_run(config: DictConfig) -> None:
    """A single run's config (with its ``hydra`` node): a sweep preset needs ``-m`` unless the
    command picks one value for each key it sweeps."""
    swept = dict(config.hydra.sweeper.get("params") or {})
    given = {o.lstrip("+~").partition("=")[0] for o in typed_overrides(config.hydra)}
    unpicked = [key for key in swept if key not in given]
    if unpicked:
        preset = config.hydra.runtime.choices.get("experiment")
        raise ConfigError(f"experiment={preset}",
                          f"this preset is a sweep over {', '.join(f'{k}={swept[k]}' for k in unpicked)}; "
                          f"run it with -m (backprop-lab -m experiment={preset}), or pick one value for "
                          f"{', '.join(unpicked)}")
    check_config(task_config(config))


def check_hydra(config: DictConfig, multirun: bool) -> None:
    """What Hydra or a plugin would otherwise fail on with a traceback once the checks passed: an
    output folder that cannot be created, a joblib launcher of no worker, an Optuna search of no trial."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    folder = str(OmegaConf.select(config, key))
    if error := write_error(Path(folder), folder=True):
        raise ConfigError(f"{key}={folder}", f"cannot be created ({error})")
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


def logging_level_problem(overrides: list[str]) -> str | None:
    """A ``hydra.*_logging...level=X`` on the command line that ``logging`` does not know, as one line."""
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if re.fullmatch(r"hydra\.(hydra|job)_logging\..*level", key) and value.upper() not in LOG_LEVELS:
            return f"{key}={value}: must be a logging level: {', '.join(LOG_LEVELS)}"
    return None


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
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    basic = config.hydra.sweeper.get("_target_", "").endswith("BasicSweeper")
    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()] if basic else []
    parser = OverridesParser.create(config_loader=loader)
    overrides = parser.parse_overrides(params + typed_overrides(config.hydra))
    if not basic:
        return BasicSweeper.split_arguments([o for o in overrides if not o.is_sweep_override()], None)[0]
    for override in overrides:
        _check_basic_sweep(override, loader)
    return BasicSweeper.split_arguments(overrides, None)[0]


def _check_basic_sweep(override, loader) -> None:
    """A sweep the basic sweeper can expand into at least one value (it would fail on an
    ``interval()``, compose a glob listed among values as a dict, and run nothing for an empty one)."""
    from hydra.core.override_parser.types import ChoiceSweep, Glob, IntervalSweep, RangeSweep

    value, key = override.value(), override.key_or_group
    if isinstance(value, IntervalSweep):
        raise ConfigError(override.input_line, "interval() is drawn from by a sampling sweeper "
                          "(hydra/sweeper=optuna); the basic sweeper takes a,b,c, range() and glob()")
    if isinstance(value, ChoiceSweep) and any(isinstance(v, Glob) for v in value.list):
        raise ConfigError(override.input_line, "a glob() is a whole sweep, not one value among others: "
                          f"put every pattern in one, {key}=glob([a*,b,...])")
    if isinstance(value, RangeSweep) and value.step == 0:
        raise ConfigError(override.input_line, "a range() needs a step other than 0")
    if override.is_sweep_override() and not list(override.sweep_string_iterator()):
        options = loader.get_group_options(key) if isinstance(value, Glob) else []
        rule = f"matches no option of {key} ({', '.join(options)})" if options else "sweeps over no value"
        raise ConfigError(override.input_line, f"{rule}: the sweep would run nothing")


def check_sweep(config: DictConfig, loader) -> list[list[str]]:
    """Compose and check every job of the sweep before the first starts; returns each job's overrides.
    The first invalid job is a ConfigError naming its number and overrides."""
    jobs = sweep_jobs(config, loader)
    for num, overrides in enumerate(jobs):
        typed = re.sub(r"\\(.)", r"\1", " ".join(overrides))  # Hydra escapes what it re-parses: show it as typed
        check_job(config, loader, list(overrides), f"job #{num} of {len(jobs)} ({typed or 'no overrides'})")
    return jobs


def varying_keys(jobs: list[list[str]]) -> list[str]:
    """The keys whose value differs between the jobs: what a job's run name needs to say."""
    per_job = [dict(o.lstrip("+~").partition("=")[::2] for o in overrides) for overrides in jobs]
    keys = dict.fromkeys(key for job in per_job for key in job)
    return [key for key in keys if len({job.get(key) for job in per_job}) > 1]


def check_job(config: DictConfig, loader, overrides: list[str], where: str) -> None:
    """Compose the job of ``overrides`` and check it; a ConfigError ends with ``[where]``."""
    try:
        job_config = loader.load_sweep_config(config, overrides)
        check_config(task_config(job_config))
    except ConfigError as err:
        raise ConfigError(f"{err} [{where}]") from None
    except Exception as err:  # Hydra's or OmegaConf's composition errors
        if not _is_hydra_error(err):
            raise
        raise ConfigError(f"{hydra_error(err, overrides)} [{where}]") from None


def _is_hydra_error(err: BaseException) -> bool:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(err, (HydraException, OmegaConfBaseException))


def check_tracking(cfg: DictConfig) -> None:
    """The detail level is known, the histogram cadence valid, and for ``tracking=mlflow`` the
    store in force is reachable."""
    if cfg.tracking.detail not in ("standard", "full"):
        raise ConfigError(f"tracking.detail={cfg.tracking.detail}", "must be standard or full")
    if (every := cfg.tracking.histogram_every) is not None:
        if cfg.tracking.detail != "full":
            raise ConfigError(f"tracking.histogram_every={every}", "used only with tracking.detail=full "
                                                                   "(standard detail records no histogram)")
        if not every >= 1:
            raise ConfigError(f"tracking.histogram_every={every}", "must be an integer >= 1")
    if cfg.tracking.report not in REPORT:
        raise ConfigError(f"tracking.report={cfg.tracking.report}", f"must be {' | '.join(REPORT)}")
    if cfg.tracking.run_figures not in RUN_FIGURES:
        raise ConfigError(f"tracking.run_figures={cfg.tracking.run_figures}", f"must be {' | '.join(RUN_FIGURES)}")
    if cfg.tracking.name == "none":
        if cfg.get("resume"):
            raise ConfigError("resume=true", "needs tracking=mlflow: the runs to reuse are found by their config_hash tag")
        for key in ("uri", "experiment"):
            if cfg.tracking.get(key) is not None:
                raise ConfigError(f"tracking.{key}={cfg.tracking[key]}", "not used by tracking=none (nothing is tracked)")
        return
    preset = OmegaConf.select(cfg, "hydra.runtime.choices.experiment")
    name = cfg.tracking.get("experiment") or preset or "default"
    shown = name if len(name) <= 60 else f"{name[:40]}..."
    check_experiment_name(name, f"tracking.experiment={shown}" if cfg.tracking.get("experiment") else f"experiment={shown}")
    if len(description := description_of(cfg) or "") > MAX_TAG_VALUE:
        raise ConfigError(f"description={description[:40]}...", f"at most {MAX_TAG_VALUE} characters (MLflow's limit "
                                                                 f"for a note); this one has {len(description)}")
    uri, _, source = resolve_uri(cfg.tracking.uri, original_cwd(cfg))
    check_store(uri, source)


def original_cwd(cfg: DictConfig) -> Path | None:
    """The folder the command was started in (Hydra's ``runtime.cwd``), where the embedded store lives."""
    cwd = OmegaConf.select(cfg, "hydra.runtime.cwd")
    return Path(cwd) if cwd else None

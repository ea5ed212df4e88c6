"""Checks before any work and before anything is written: every key taken, every value within
its rules, the memory it needs, the tracking store reachable; for a sweep, every job's config.

Hydra calls these from ``runner.callbacks.Lifecycle`` before it creates a run directory, so a
rejected command leaves nothing behind: no MLflow run, no directory.
"""

from __future__ import annotations

import copy
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from .build import build
from .errors import ConfigError, hydra_error
from .schema import check_keys
from .stores import check_store, resolve_uri, write_error

RUN_FIGURES = ("auto", "always", "never")


def task_config(config: DictConfig) -> DictConfig:
    """``config`` without its ``hydra`` node: what the task function sees."""
    task = copy.deepcopy(config)
    with read_write(task), open_dict(task):
        task.pop("hydra", None)
    return task


def check_config(cfg: DictConfig) -> None:
    """Every check a run makes before it trains, on a task config; raises ConfigError."""
    check_keys(cfg)
    for key in sorted(OmegaConf.missing_keys(cfg)):
        group = key.split(".")[0]
        raise ConfigError(f"{key}=???", f"{group}={cfg[group].get('name', group)} needs a value for {key}: "
                                        "give it on the command line or in a preset")
    build(cfg)


def check_single_run(config: DictConfig) -> None:
    """A single run's config (with its ``hydra`` node): a sweep preset needs ``-m`` unless the
    command picks one value for each key it sweeps."""
    swept = dict(config.hydra.sweeper.get("params") or {})
    given = {o.lstrip("+~").partition("=")[0] for o in config.hydra.overrides.task}
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
    if not multirun:
        return
    if config.hydra.launcher.get("_target_", "").endswith("JoblibLauncher") and config.hydra.launcher.n_jobs == 0:
        raise ConfigError("hydra.launcher.n_jobs=0", "must be a number of workers >= 1, or -1 for every core")
    if config.hydra.sweeper.get("_target_", "").endswith("OptunaSweeper"):
        for name in ("n_trials", "n_jobs"):
            if (value := config.hydra.sweeper.get(name)) is not None and value < 1:
                raise ConfigError(f"hydra.sweeper.{name}={value}", "must be an integer >= 1")


def sweep_jobs(config: DictConfig, loader) -> list[list[str]]:
    """The override list of every job the sweep will launch, as Hydra's basic sweeper expands it
    (``glob()`` lists the group's options through ``loader``).  Other sweepers (Optuna) draw their
    jobs as they go: then only the fixed overrides are known."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    basic = config.hydra.sweeper.get("_target_", "").endswith("BasicSweeper")
    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()] if basic else []
    parser = OverridesParser.create(config_loader=loader)
    overrides = parser.parse_overrides(params + list(config.hydra.overrides.task))
    if not basic:
        return BasicSweeper.split_arguments([o for o in overrides if not o.is_sweep_override()], None)[0]
    for override in overrides:
        _check_basic_sweep(override, loader)
    return BasicSweeper.split_arguments(overrides, None)[0]


def _check_basic_sweep(override, loader) -> None:
    """A sweep the basic sweeper can expand into at least one value (it would fail on an
    ``interval()``, compose a glob listed among values as a dict, and run nothing for an empty one)."""
    from hydra.core.override_parser.types import ChoiceSweep, Glob, IntervalSweep

    value, key = override.value(), override.key_or_group
    if isinstance(value, IntervalSweep):
        raise ConfigError(override.input_line, "interval() is drawn from by a sampling sweeper "
                          "(hydra/sweeper=optuna); the basic sweeper takes a,b,c, range() and glob()")
    if isinstance(value, ChoiceSweep) and any(isinstance(v, Glob) for v in value.list):
        raise ConfigError(override.input_line, "a glob() is a whole sweep, not one value among others: "
                          f"put every pattern in one, {key}=glob([a*,b,...])")
    if override.is_sweep_override() and not list(override.sweep_string_iterator()):
        options = loader.get_group_options(key) if isinstance(value, Glob) else []
        rule = f"matches no option of {key} ({', '.join(options)})" if options else "sweeps over no value"
        raise ConfigError(override.input_line, f"{rule}: the sweep would run nothing")


def check_sweep(config: DictConfig, loader) -> int:
    """Compose and check every job of the sweep before the first starts; returns the job count.
    The first invalid job is a ConfigError naming its number and overrides."""
    jobs = sweep_jobs(config, loader)
    for num, overrides in enumerate(jobs):
        where = f"job #{num} of {len(jobs)} ({' '.join(overrides) or 'no overrides'})"
        try:
            job_config = loader.load_sweep_config(config, list(overrides))
            check_config(task_config(job_config))
        except ConfigError as err:
            raise ConfigError(f"{err} [{where}]") from None
        except Exception as err:  # Hydra's or OmegaConf's composition errors
            if not _is_hydra_error(err):
                raise
            raise ConfigError(f"{hydra_error(err, list(overrides))} [{where}]") from None
    return len(jobs)


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
    if cfg.tracking.run_figures not in RUN_FIGURES:
        raise ConfigError(f"tracking.run_figures={cfg.tracking.run_figures}", f"must be {' | '.join(RUN_FIGURES)}")
    if cfg.tracking.name == "none":
        if cfg.get("resume"):
            raise ConfigError("resume=true", "needs tracking=mlflow: the runs to reuse are found by their config_hash tag")
        for key in ("uri", "experiment"):
            if cfg.tracking.get(key) is not None:
                raise ConfigError(f"tracking.{key}={cfg.tracking[key]}", "not used by tracking=none (nothing is tracked)")
        return
    uri, _, source = resolve_uri(cfg.tracking.uri)
    check_store(uri, source)

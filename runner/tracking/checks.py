"""The ``tracking`` group's rules, and the store in force reachable, before any work."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..config.errors import ConfigError
from ..config.recorded import description_of
from .schema import DEFAULT_EXPERIMENT, MAX_TAG_VALUE
from .stores import check_case_twin, check_experiment_name, check_store, experiment_name, resolve_uri, sqlite_experiments


def check_tracking(cfg: DictConfig) -> None:
    """The detail level is known, the histogram cadence valid, and for ``tracking=mlflow`` the
    store in force is reachable."""
    if (every := cfg.tracking.histogram_every) is not None:
        if cfg.tracking.detail != "full":
            raise ConfigError(f"tracking.histogram_every={every}", "used only with tracking.detail=full "
                                                                   "(standard detail records no histogram)")
        if not every >= 1:
            raise ConfigError(f"tracking.histogram_every={every}", "must be an integer >= 1")
    if cfg.tracking.name == "none":
        if cfg.get("resume"):
            raise ConfigError("resume=true", "needs tracking=mlflow: the runs to reuse are found by their config_hash tag")
        for key in ("uri", "experiment"):
            if cfg.tracking.get(key) is not None:
                raise ConfigError(f"tracking.{key}={cfg.tracking[key]}", "not used by tracking=none (nothing is tracked)")
        return
    preset = OmegaConf.select(cfg, "hydra.runtime.choices.experiment")
    name = experiment_name(cfg.tracking.get("experiment"), preset)
    shown = name if len(name) <= 60 else f"{name[:40]}..."
    subject = f"tracking.experiment={shown}" if cfg.tracking.get("experiment") is not None else f"experiment={shown}"
    check_experiment_name(name, subject)
    if len(description := description_of(cfg) or "") > MAX_TAG_VALUE:
        raise ConfigError(f"description={description[:40]}...", f"at most {MAX_TAG_VALUE} characters (MLflow's limit "
                                                                 f"for a note); this one has {len(description)}")
    uri, _, source = resolve_uri(cfg.tracking.uri, original_cwd(cfg))
    check_store(uri, source)
    if name != DEFAULT_EXPERIMENT:  # the default is the store's, whatever its case (open_experiment)
        check_case_twin(name, sqlite_experiments(uri), subject)  # a server's store is checked as it is opened


def original_cwd(cfg: DictConfig) -> Path | None:
    """The folder the command was started in (Hydra's ``runtime.cwd``), where the embedded store lives."""
    cwd = OmegaConf.select(cfg, "hydra.runtime.cwd")
    return Path(cwd) if cwd else None

"""A composed config as it is recorded: the hash that identifies what a run computes, and the values
written into MLflow and ``config.yaml`` with environment values (secrets) kept as written."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import yaml
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf._utils import get_omega_conf_dumper

from .deciding import NOT_DECIDING, NOT_DECIDING_TRAINER, tells_the_run_apart
from .overrides import parsed



def config_hash(cfg: DictConfig) -> str:
    """A hash of the resolved config that decides the result: everything but tracking, resume, the
    description and the memory guard (output paths and launcher settings live in the ``hydra`` node,
    never here)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    deciding = {k: v for k, v in container.items() if k not in NOT_DECIDING and k != "hydra"}
    deciding["trainer"] = {k: v for k, v in deciding["trainer"].items() if k not in NOT_DECIDING_TRAINER}
    text = json.dumps(deciding, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def as_recorded(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as a plain dict, but for values read from the environment
    (``${oc.env:TOKEN}``), kept as written: a secret passed that way never reaches the store."""
    def merge(raw: Any, resolved: Any) -> Any:
        if isinstance(raw, dict):
            return {key: merge(raw[key], resolved[key]) for key in raw}
        if isinstance(raw, list):
            return [merge(a, b) for a, b in zip(raw, resolved)]
        return raw if isinstance(raw, str) and "oc.env:" in raw else resolved

    return merge(OmegaConf.to_container(cfg, resolve=False, enum_to_str=True),
                 OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


def recorded_yaml(cfg: DictConfig) -> str:
    """``as_recorded(cfg)`` as ``config.yaml`` holds it: the text ``OmegaConf.to_yaml`` writes of it (its own
    YAML dumper, which quotes a string another reader would take for a number or a bool), without first
    making a config of the plain dict again (two thirds of the 3.8 ms it took a job, measured)."""
    return yaml.dump(as_recorded(cfg), default_flow_style=False, allow_unicode=True, sort_keys=False,
                     Dumper=get_omega_conf_dumper())


CHANGES_SHOWN = 2000  # characters of a description's list of changes (a note holds 8000)


def description_of(cfg: DictConfig, values: Mapping[str, str] | None = None,
                   preset_sweep: Mapping[str, str] | None = None) -> str | None:
    """The preset's (or the command line's) description, as recorded (see ``as_recorded``).  It describes
    the experiment as the preset (or the default config) composes it: given a run's overrides
    (``values``, key -> value as typed), the ones it did not foresee are listed below it, so a note never
    says "sigmoid" over a ReLU run.  Not listed: values of the preset's own sweep (``preset_sweep``, its
    ``hydra.sweeper.params``) and keys that do not change what a run computes (tracking, resume)."""
    raw = OmegaConf.to_container(cfg, resolve=False).get("description")
    text = raw if isinstance(raw, str) and "oc.env:" in raw else cfg.get("description")
    if not text or not values or "description" in values:  # a description given with the run is its own
        return text
    changed = [f"{key}={value}" for key, value in values.items()
               if tells_the_run_apart(key) and not _in_sweep(key, value, preset_sweep or {})]
    if not changed:
        return text
    listed = ", ".join(changed)
    if len(listed) > CHANGES_SHOWN:
        listed = listed[:CHANGES_SHOWN - 1] + "…"
    return f"{text}\n\n*Changed from what this describes:* {listed}"


def _in_sweep(key: str, value: str, sweep: Mapping[str, str]) -> bool:
    """Whether ``value`` is one the preset's own sweep gives ``key``: as typed (a whole sweep, in a parent
    run), one of its values (a job), or any, where they are not listed (``interval()``, ``glob()``)."""
    if key not in sweep:
        return False
    given = str(sweep[key])
    if value == given:
        return True
    try:
        override = parsed([f"{key}={given}"])[0]
        return value in set(override.sweep_string_iterator()) if override.is_sweep_override() else value == given
    except HydraException:  # a search space (interval(), tag(log, ...)) or a glob(): the sweep's values are its
        return True

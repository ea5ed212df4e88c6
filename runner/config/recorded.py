"""A composed config as it is recorded: the hash that identifies what a run computes, and the values
written into MLflow and ``config.yaml`` with environment values (secrets) kept as written."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from omegaconf import DictConfig, OmegaConf

NOT_DECIDING = ("tracking", "resume", "description", "max_jobs")  # keys that do not change what a run computes
NOT_DECIDING_TRAINER = ("max_memory_fraction",)  # a guard, not a setting of the computation


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

    return merge(OmegaConf.to_container(cfg, resolve=False), OmegaConf.to_container(cfg, resolve=True))


def description_of(cfg: DictConfig) -> str | None:
    """The preset's (or the command line's) description, as recorded (see ``as_recorded``)."""
    raw = OmegaConf.to_container(cfg, resolve=False).get("description")
    return raw if isinstance(raw, str) and "oc.env:" in raw else cfg.get("description")

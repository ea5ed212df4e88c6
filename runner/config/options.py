"""One schema per option of the engine's registries (activation, loss, init, optimizer, dataset), made
from the factories' own signatures, so a parameter is declared once, in the engine; all schemas
stored in Hydra's ConfigStore (``register``).

An option's YAML file extends its own schema (``defaults: [/init_normal_schema@_here_]``), so the
composed config holds exactly the keys the chosen option takes: a typo or a parameter of another
option fails at compose time, and ``--cfg job``, ``--help`` and tab completion show what applies.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import inspect
import types
import typing
from dataclasses import field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from backprop_core import ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS
from backprop_core.initializers import DRAWS_OWN_BIASES
from backprop_core.theory import critical_sigma_w2

from ..datasets import DATASETS
from .schema import (BIAS_FIELDS, Config, DeepArchitecture, GridSweeperConfig, MLPArchitecture, OptunaSweeperConfig,
                     ResidualArchitecture, TrackingConfig, TrainerConfig)


def _field_type(hint: Any) -> Any:
    """The OmegaConf field type for a factory's type hint (Any where OmegaConf has no match)."""
    if hint in (int, float, bool, str):
        return hint
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return Optional[_field_type(rest[0])] if len(rest) == 1 else Any
    if origin in (list, tuple, collections.abc.Sequence) and args and args[0] in (int, float, str):
        return list[args[0]]
    return Any


def _parameters(factory) -> list[tuple[str, Any, Any]]:
    """``(name, type, default)`` of every keyword a factory takes (``rng`` is the runner's to pass)."""
    hints = typing.get_type_hints(factory.__init__ if inspect.isclass(factory) else factory)
    fields = []
    for p in inspect.signature(factory).parameters.values():
        if p.name == "rng" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        default = MISSING if p.default is p.empty else p.default
        if isinstance(default, tuple):
            default = list(default)
        kind = _field_type(hints.get(p.name, Any))
        fields.append((p.name, kind, field(default_factory=lambda d=default: d) if isinstance(default, list)
                       else default))
    return fields


def option_schema(group: str, option: str, factory, extra: list[tuple[str, Any, Any]] = ()) -> type:
    """A dataclass with ``name`` (fixed to ``option``) and exactly the parameters ``factory`` takes."""
    fields = [("name", str, option), *_parameters(factory), *extra]
    cls_name = "".join(part.capitalize() for part in f"{option}_{group}".split("_"))
    schema = dataclasses.make_dataclass(cls_name, fields)
    schema.__module__ = __name__  # pickle finds it here (module __getattr__), as a composed config needs
    return schema


def __getattr__(name: str) -> type:
    """The generated schema classes by name (``runner.config.options.TanhActivation``), for pickle."""
    for schema in option_schemas().values():
        if schema.__name__ == name:
            return schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def option_schemas() -> dict[tuple[str, str], type]:
    """Every ``(group, option)``'s schema (made once: the classes' identity is what OmegaConf keeps)."""
    schemas = {("architecture", "mlp"): MLPArchitecture, ("architecture", "deep"): DeepArchitecture,
               ("architecture", "residual"): ResidualArchitecture,
               ("trainer", "default"): TrainerConfig,
               ("tracking", "mlflow"): TrackingConfig, ("tracking", "none"): TrackingConfig}
    for option, cls in ACTIVATIONS.items():
        if cls.elementwise:  # softmax is an output activation only (loss.output_activation)
            schemas["activation", option] = option_schema("activation", option, cls)
    for option, cls in LOSSES.items():
        schemas["loss", option] = option_schema("loss", option, cls, [("output_activation", str, "identity")])
    for option, factory in INITIALIZERS.items():
        schemas["init", option] = option_schema("init", option, factory,
                                                [] if option in DRAWS_OWN_BIASES else BIAS_FIELDS)
    for option, cls in OPTIMIZERS.items():
        schemas["optimizer", option] = option_schema("optimizer", option, cls)
    for option, factory in DATASETS.items():
        schemas["dataset", option] = option_schema("dataset", option, factory)
    return schemas


def schema_name(group: str, option: str) -> str:
    return f"{group}_{option}_schema"


def register() -> None:
    """Store the schemas as top-level configs (``init_normal_schema``...), outside the groups, so
    that they are no option to pick and ``--help`` lists only the real groups."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    for (group, option), schema in option_schemas().items():
        cs.store(name=schema_name(group, option), node=schema)
    cs.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConfig, provider="backprop-lab")
    cs.store(group="hydra/sweeper", name="grid", node=GridSweeperConfig, provider="backprop-lab")
    # ${critical_sigma_w2:tanh,0.05} = 1.7609...: a preset can sit on the critical line of its activation
    OmegaConf.register_new_resolver("critical_sigma_w2", _critical_sigma_w2, replace=True, use_cache=True)


def _critical_sigma_w2(activation: str, sigma_b2: float) -> float:
    return critical_sigma_w2(str(activation), float(sigma_b2))



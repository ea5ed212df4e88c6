"""Structured config schemas, one dataclass per option of every config group, in Hydra's ConfigStore.

An option's YAML file extends its own schema (``defaults: [/init_normal_schema@_here_]``), so
the composed config holds exactly the keys the chosen option takes: a typo or a parameter of
another option fails at compose time, ``--cfg job``, ``--help`` and tab completion show only
what applies, and ``check_keys`` catches what Hydra lets through (``+key=value`` additions).

The schemas of the engine's registries (activation, loss, init, optimizer, dataset) are made
from the factories' own signatures, so a parameter is declared once, in the engine.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import inspect
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from backprop_core import ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS
from backprop_core.initializers import DRAWS_OWN_BIASES

from .datasets import DATASETS
from .errors import ConfigError, did_you_mean


@dataclass
class MLPArchitecture:
    name: str = "mlp"
    hidden_sizes: list[int] = field(default_factory=lambda: [16])
    input_size: Optional[int] = None  # null: the dataset's feature count
    output_size: Optional[int] = None  # null: from the dataset and the loss
    bias: str = "per_unit"  # per_unit | shared | none
    train_bias: bool = True
    hidden_derivative: str = "exact"  # exact | one: f'(z) := 1 in the hidden layers' backward pass (not the gradient)


@dataclass
class DeepArchitecture:
    name: str = "deep"
    depth: int = 5  # hidden layers
    width: int = 32  # units per hidden layer
    input_size: Optional[int] = None
    output_size: Optional[int] = None
    bias: str = "per_unit"
    train_bias: bool = True
    hidden_derivative: str = "exact"  # exact | one (see MLPArchitecture)


@dataclass
class TrainerConfig:
    epochs: int = 1500
    batch_size: Optional[int] = None  # null: full batch
    max_steps: Optional[int] = None
    log_every: Optional[int] = None  # null: about 1000 logged steps per run
    shuffle: bool = True
    clip_grad_norm: Optional[float] = None
    clip_grad_value: Optional[float] = None
    divergence_guard: bool = True
    dtype: str = "float64"  # float64 | float32
    log_outputs: bool = False  # output/output_uNN: output unit activations (the articles print them)
    check_gradients: bool = False  # gradient check (central differences) at the initial weights
    jacobian_samples: int = 0  # > 0: singular values of the input-output Jacobian at the initial weights
    threads: Optional[int] = None  # BLAS threads; null: 1, or every core for a job alone with a large net
    max_memory_fraction: float = 0.5  # refuse a run whose arrays would need more of the available memory


@dataclass
class TrackingConfig:
    """One schema for ``mlflow`` and ``none``, so that a preset may set ``tracking.detail`` and
    still run with ``tracking=none``; a ``uri`` or ``experiment`` given to ``none`` is refused
    (``runner.preflight.check_tracking``)."""

    name: str = "mlflow"  # mlflow | none
    uri: Optional[str] = None  # null: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/outputs/mlflow.db
    experiment: Optional[str] = None  # null: the preset's name, else "default"
    detail: str = "standard"  # standard | full
    histogram_every: Optional[int] = None  # full detail: distributions at every N-th logged record and the closing one (null: 10)
    run_figures: str = "auto"  # auto: a single run draws its own figures, a sweep's job does not | always | never
    report: str = "auto"  # auto: a sweep's report is written into its parent run when it ends | never


@dataclass
class Config:
    architecture: Any = MISSING
    activation: Any = MISSING
    loss: Any = MISSING
    init: Any = MISSING
    optimizer: Any = MISSING
    dataset: Any = MISSING
    trainer: TrainerConfig = MISSING
    tracking: Any = MISSING
    seed: int = 0
    resume: bool = False  # multirun: skip every job whose configuration already has a finished run
    description: Optional[str] = None  # a preset's one-line summary


GROUPS = ("architecture", "activation", "loss", "init", "optimizer", "dataset", "trainer", "tracking")

# keys every init option takes besides its initializer's own parameters: the biases' initializer
BIAS_FIELDS = [("bias_init", str, "zeros"), ("bias_value", Optional[float], None),
               ("bias_std", Optional[float], None), ("biases", Any, None)]
BIAS_PARAMS = {"bias_value": "value", "bias_std": "std", "biases": "values"}  # init.<key> -> factory param


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
    """The generated schema classes by name (``runner.schema.TanhActivation``), for pickle."""
    for schema in option_schemas().values():
        if schema.__name__ == name:
            return schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def option_schemas() -> dict[tuple[str, str], type]:
    """Every ``(group, option)``'s schema (made once: the classes' identity is what OmegaConf keeps)."""
    schemas = {("architecture", "mlp"): MLPArchitecture, ("architecture", "deep"): DeepArchitecture,
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
    # ${critical_sigma_w2:tanh,0.05} = 1.7609...: a preset can sit on the critical line of its activation
    OmegaConf.register_new_resolver("critical_sigma_w2", _critical_sigma_w2, replace=True, use_cache=True)


def _critical_sigma_w2(activation: str, sigma_b2: float) -> float:
    from backprop_core.theory import critical_sigma_w2

    return critical_sigma_w2(str(activation), float(sigma_b2))


def check_keys(cfg: DictConfig) -> None:
    """Every key of the composed ``cfg`` (without its ``hydra`` node) is one the chosen options take.

    Hydra lets ``+key=value`` add keys that no schema declares; they would be logged as if they
    had taken effect.  So any key outside its node's schema is a ConfigError naming it, with the
    option that does take it or a close match.
    """
    _check_node(cfg, "")


def _check_node(node: DictConfig, prefix: str) -> None:
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return  # a free-form dict (e.g. dataset.init_params)
    declared = [f.name for f in dataclasses.fields(schema)]
    group = prefix.rstrip(".")
    option = schema_option(schema)
    for key in node.keys():
        path = f"{prefix}{key}"
        if key not in declared:
            value = OmegaConf.select(node, str(key), throw_on_missing=False)
            raise ConfigError(f"{path}={_text(value)}", unknown_key_rule(group, schema, str(key)))
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            _check_node(child, f"{path}.")
    if group and "name" in declared and node.get("name") not in _options(group, schema):
        raise ConfigError(f"{group}.name={node.get('name')}",
                          f"choose an option with {group}={node.get('name')}, not by renaming {group}={option}")


def _options(group: str, schema: type) -> set[str]:
    """The options of ``group`` whose schema is ``schema`` (tracking's two share one)."""
    return {option for (g, option), s in option_schemas().items() if g == group and s is schema}


def schema_option(schema: type | None) -> str | None:
    """The option whose schema ``schema`` is (``he_normal`` for init's), or None."""
    return next((option for (_, option), s in option_schemas().items() if s is schema), None)


def unknown_key_rule(group: str, schema: type | None, key: str) -> str:
    """The rule for ``key``, which ``group``'s chosen option (of schema ``schema``) does not take: the
    options that do take it, or a close match.  ``group=""`` is the top level."""
    if not group:
        known = [f.name for f in dataclasses.fields(Config)]
        return (f"no config group or key {key!r}{did_you_mean(key, known)}"
                f" (a new key with +{key}=... is refused too: nothing reads it)")
    option = schema_option(schema)
    top = group.split(".")[0]
    known = [f.name for f in dataclasses.fields(Config)]
    if option is None and top not in known:
        return f"no config group or key {top!r}{did_you_mean(top, known)}"
    if option is None:
        return f"{group} has no key {key!r}"
    takes = [f.name for f in dataclasses.fields(schema) if f.name != "name"]
    rule = f"not a parameter of {group}={option}, which takes: {', '.join(takes) or 'no parameters'}"
    others = sorted(o for (g, o), s in option_schemas().items()
                    if g == group and s is not schema and key in {f.name for f in dataclasses.fields(s)})
    if others:
        return f"{rule} ({key} is a parameter of {group}={', '.join(others[:4])}{', ...' if len(others) > 4 else ''})"
    return rule + did_you_mean(key, takes)


def _text(value: Any) -> str:
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=False)
    return str(value).replace(" ", "") if isinstance(value, (list, dict)) else str(value)

"""From a composed config to the engine's objects: dataset, network, loss, optimizer, trainer.

Everything a user can get wrong is checked here, before any run is opened, and reported as
a ``ConfigError`` whose message names the key, the value and the rule.  A single run is built
once: the check before any work hands its build to the run (``build_once``).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass, replace
from collections.abc import Callable
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from backprop_core import (
    ACTIVATIONS, BIAS_INITIALIZERS, INITIALIZERS, LOSSES, OPTIMIZERS, BlockNetwork, Initializer, Network, Trainer,
)
from backprop_core.datasets import Dataset
from backprop_core.losses import Loss
from backprop_core.optimizers import Optimizer
from backprop_core.registry import ParameterError, build as build_from_registry, parameters

from ..config.errors import ConfigError
from ..config.schema import BIAS_PARAMS
from ..datasets import DATASETS
from .memory import available_memory, check_memory, network_bytes

MAX_LOGGED_STEPS = 1000  # per run and key: keeps MLflow's charts fast


@dataclass
class BuiltRun:
    """Everything one run needs, built and checked."""

    data: Dataset
    Y_train: np.ndarray
    Y_val: np.ndarray
    net: Network
    loss: Loss
    optimizer: Optimizer
    trainer: Trainer
    shuffle_rng: np.random.Generator
    weight_variance: Callable[[int, int], float] | None = None  # Var(W) of a (fan_in, fan_out) layer's entries
    bias_variance: float | None = None  # Var(b); None where the biases have no variance (explicit values)


class Settings(dict):
    """A task config resolved into plain values, read as the DictConfig it came from (``cfg.trainer.dtype``):
    a build reads each value once, and an OmegaConf read costs ~20 µs.  (A key named like a dict method,
    ``items`` or ``values``, is read as ``node["values"]``: no config key is, today.)"""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    @classmethod
    def of(cls, cfg: DictConfig | dict) -> Settings:
        """``cfg`` resolved (a DictConfig), or taken as it is (an already resolved plain dict)."""
        if isinstance(cfg, cls):
            return cfg
        plain = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
        return cls._wrap(plain)

    @classmethod
    def _wrap(cls, node: Any) -> Any:
        if isinstance(node, dict):
            return cls({key: cls._wrap(value) for key, value in node.items()})
        return [cls._wrap(value) for value in node] if isinstance(node, list) else node


def _given(node: Settings, skip: tuple[str, ...] = ("name",)) -> dict[str, Any]:
    """The keys of a config node that are set (not null)."""
    return {k: v for k, v in node.items() if v is not None and k not in skip}


def config_error(group: str, err: ParameterError, rename: dict[str, str] | None = None) -> ConfigError:
    """The engine's ``lr=0.0: must be > 0`` as the runner's ``optimizer.lr=0.0: must be > 0``
    (``rename`` maps an engine parameter to its config key: a bias initializer's ``std`` is ``bias_std``)."""
    key = f"{group}.{(rename or {}).get(err.param, err.param)}"
    rule = re.sub(r"\bNone\b", "null", err.rule)  # the engine's words for Python; a config says null
    return ConfigError(f"{key}={err.value!r}" if err.show_value else key, rule)


def _make(key: str, name: str, registry: dict, params: dict[str, Any], *, name_key: str | None = None,
          rng: np.random.Generator | None = None, rename: dict[str, str] | None = None):
    """``registry[name](**params)`` (plus ``rng`` where the factory takes one), built by the engine's
    registry; an unknown name or parameter, or a value the factory rejects, is a ConfigError naming the key."""
    _check(name in registry, f"{name_key or key + '.name'}={name!r}: unknown; valid names: {', '.join(sorted(registry))}")
    accepted = parameters(registry[name])
    if rng is not None and (accepted is None or "rng" in accepted):
        params = params | {"rng": rng}
    try:
        return build_from_registry(name_key or key, name, registry, **params)
    except ParameterError as err:
        raise config_error(key, err, rename) from None
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def hidden_sizes(cfg: Settings) -> list[int]:
    arch = cfg.architecture
    if arch.name == "residual":  # the stem's output, then every block's layers
        _check(arch.layers_per_block in (1, 2), f"architecture.layers_per_block={arch.layers_per_block}: must be 1 or 2")
        _check(arch.depth >= 1 + arch.layers_per_block and (arch.depth - 1) % arch.layers_per_block == 0,
               f"architecture.depth={arch.depth}: a residual net's hidden layers are a stem and whole blocks of "
               f"architecture.layers_per_block={arch.layers_per_block}: 1 + a multiple of it, at least "
               f"{1 + arch.layers_per_block}")
        _check(arch.width >= 1, f"architecture.width={arch.width}: must be >= 1")
        return [arch.width] * arch.depth
    if arch.name == "deep":
        _check(arch.depth >= 1, f"architecture.depth={arch.depth}: must be >= 1")
        _check(arch.width >= 1, f"architecture.width={arch.width}: must be >= 1")
        return [arch.width] * arch.depth
    sizes = list(arch.hidden_sizes)
    for i, n in enumerate(sizes):
        _check(n >= 1, f"architecture.hidden_sizes[{i}]={n}: must be >= 1")
    return sizes


def build_dataset(cfg: Settings, rng: np.random.Generator, memory_budget: float) -> Dataset:
    """The dataset, generated after its parameters are checked: every number finite, the arrays
    within the memory budget; and the data it gives finite."""
    params = _given(cfg.dataset)
    for key, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"dataset.{key}={value}", "must be a finite number")
    if "n_samples" in params:
        needed = 8 * 4 * params["n_samples"] * (params.get("n_features") or 2)  # X, splits, targets
        check_memory(f"dataset.n_samples={params['n_samples']}", needed, memory_budget, "the generated data")
    data = _make("dataset", cfg.dataset.name, DATASETS, params, rng=rng)
    for split in ("X_train", "X_val", "y_train", "y_val"):
        values = getattr(data, split)
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            swept = ", ".join(f"dataset.{k}={v}" for k, v in params.items() if isinstance(v, (int, float))) or "none"
            raise ConfigError(f"dataset={data.name}", f"its {split} holds NaN or inf: a data error, not a divergence "
                                                      f"(numeric parameters: {swept})")
    return data


def build_trainer(cfg: Settings, n_samples: int) -> Trainer:
    t = cfg.trainer
    _check(t.dtype in ("float64", "float32"), f"trainer.dtype={t.dtype!r}: must be float64 or float32")
    _check(t.threads is None or t.threads >= 1, f"trainer.threads={t.threads}: must be >= 1 (or null: chosen)")
    _check(t.jacobian_samples >= 0, f"trainer.jacobian_samples={t.jacobian_samples}: must be an integer >= 0")
    _check(0 < t.max_memory_fraction <= 1, f"trainer.max_memory_fraction={t.max_memory_fraction}: must be in (0, 1]")
    params = _given(t, skip=("dtype", "check_gradients", "jacobian_samples", "threads", "max_memory_fraction"))
    try:
        trainer = Trainer(**params)
    except ParameterError as err:
        raise config_error("trainer", err) from None
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if t.log_every is None:
        return replace(trainer, log_every=max(1, math.ceil(trainer.total_steps(n_samples) / MAX_LOGGED_STEPS)))
    return trainer


def _architecture_subject(arch: Settings) -> str:
    if arch.name in ("deep", "residual"):
        return f"architecture.width={arch.width}" if arch.width >= arch.depth else f"architecture.depth={arch.depth}"
    return f"architecture.hidden_sizes={list(arch.hidden_sizes)}".replace(" ", "")


def _bias_initializer(init: Settings, weight_init):
    """The biases' initializer ``init.bias_init`` with the ``init.bias_*`` values it takes; a value
    it does not take is an error, never ignored.  An initializer that draws its own biases
    (``mean_field``: N(0, sigma_b2); its schema has no ``init.bias_*`` key) gives its own."""
    if weight_init.biases is not None:
        return weight_init.biases
    _check(init.bias_init in BIAS_INITIALIZERS,
           f"init.bias_init={init.bias_init}: unknown; valid: {', '.join(BIAS_INITIALIZERS)}")
    accepted = parameters(BIAS_INITIALIZERS[init.bias_init]) or {}
    params = {}
    for key, param in BIAS_PARAMS.items():
        if init.get(key) is None:
            continue
        if param not in accepted:
            takes = [k for k, p in BIAS_PARAMS.items() if p in accepted]
            raise ConfigError(f"init.{key}={init[key]}",
                              f"not used by init.bias_init={init.bias_init}, which takes "
                              f"{', '.join('init.' + k for k in takes) or 'no value'}")
        params[param] = init[key]
    return _make("init", init.bias_init, BIAS_INITIALIZERS, params, name_key="init.bias_init",
                 rename={param: key for key, param in BIAS_PARAMS.items()})


def build(cfg: DictConfig | dict) -> BuiltRun:
    """Build and check every part of the run ``cfg`` describes (a task config, or its resolved plain
    values); raises ConfigError."""
    cfg = Settings.of(cfg)
    _check(cfg.seed >= 0, f"seed={cfg.seed}: must be an integer >= 0")
    data_rng, init_rng, shuffle_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(3))
    budget = cfg.trainer.max_memory_fraction * available_memory()
    try:
        build_trainer(cfg, 1)  # the trainer's own rules first; its defaults need the data
        data = _dataset(cfg, data_rng, budget)
        trainer = build_trainer(cfg, len(data.X_train))
        loss = _make("loss", cfg.loss.name, LOSSES, _given(cfg.loss, ("name", "output_activation")))
        hidden = _make("activation", cfg.activation.name, ACTIVATIONS, _given(cfg.activation))
        _check(hidden.elementwise, f"activation={hidden.name!r} is an output activation only (set loss.output_activation)")
        output = _make("loss", cfg.loss.output_activation, ACTIVATIONS, {}, name_key="loss.output_activation")
        sizes = [_input_size(cfg.architecture, data), *hidden_sizes(cfg), _output_size(cfg.architecture, data, loss, output)]
        Y_train, Y_val = data.targets(sizes[-1])
        check_targets(loss.name, data.name, {"train": Y_train, "val": Y_val})
        optimizer = _make("optimizer", cfg.optimizer.name, OPTIMIZERS, _given(cfg.optimizer))
        state_arrays = sum(isinstance(x, np.ndarray) for x in optimizer.init(np.zeros(1)))
        rows = max(len(data.X_train), len(data.X_val))  # a batch is at most the training set
        check_memory(_architecture_subject(cfg.architecture), network_bytes(
            sizes, rows, np.dtype(cfg.trainer.dtype).itemsize, state_arrays), budget, f"the net {sizes}")
        arch = cfg.architecture
        net = build_network(arch, sizes, hidden, output, np.dtype(cfg.trainer.dtype), trainer, len(data.X_train))
        _check(not cfg.trainer.jacobian_samples or isinstance(net, Network),
               f"trainer.jacobian_samples={cfg.trainer.jacobian_samples}: the input-output Jacobian is computed for "
               f"plain nets (architecture.norm=none, not residual)")
        weight_init, bias_init = _initialize(net, cfg.init, init_rng)
    except ConfigError:
        raise
    except ValueError as err:  # the engine's own checks already name key, value and rule
        raise ConfigError(str(err)) from None
    bias_variance = 0.0 if arch.bias == "none" else bias_init.variance(1) if bias_init.variance else None
    return BuiltRun(data, Y_train, Y_val, net, loss, optimizer, trainer, shuffle_rng, weight_init.variance,
                    bias_variance)


def build_network(arch: Settings, sizes: list[int], hidden, output, dtype: np.dtype, trainer: Trainer,
                  n_train: int) -> Network | BlockNetwork:
    """A plain ``Network``, or a ``BlockNetwork`` for a residual or normalized architecture."""
    if arch.name != "residual" and arch.norm == "none":
        return Network(sizes, hidden, output, bias=arch.bias, train_bias=arch.train_bias, dtype=dtype,
                       hidden_derivative=arch.hidden_derivative)
    if arch.name != "residual":
        _check(len(sizes) > 2, f"architecture.norm={arch.norm}: normalizes the hidden layers, and the net {sizes} "
                               f"has none (give it a hidden layer, or architecture.norm=none)")
        _check(arch.train_bias, f"architecture.train_bias=false: frozen biases are for plain nets; "
                                f"architecture.norm={arch.norm} needs true")
        _check(arch.hidden_derivative == "exact", f"architecture.hidden_derivative={arch.hidden_derivative}: "
                                                  f"for plain nets; architecture.norm={arch.norm} needs exact")
    _check(0 <= arch.norm_momentum <= 1, f"architecture.norm_momentum={arch.norm_momentum}: must be in [0, 1]")
    _check(arch.norm_eps > 0, f"architecture.norm_eps={arch.norm_eps}: must be > 0")
    if arch.norm == "batch":  # batch statistics of one sample are 0/0: every batch needs two
        batch = min(trainer.batch_size or n_train, n_train)
        last = n_train % batch
        _check(batch >= 2 and last != 1,
               f"trainer.batch_size={trainer.batch_size}: architecture.norm=batch needs every batch of at least "
               f"2 samples; {n_train} training samples in batches of {batch} leave "
               + (f"a last batch of {last}" if last == 1 else "batches of 1"))
    _check(arch.norm != "layer" or min(sizes[1:-1]) >= 2,
           f"architecture.norm=layer: normalizes each hidden layer over its units, and the net {sizes} has a layer "
           f"of 1 unit, which it makes 0 whatever its input (nothing before it would learn): every hidden layer "
           f"needs at least 2 units")
    residual = arch.name == "residual"
    blocks = (len(sizes) - 3) // arch.layers_per_block if residual else 0
    alpha = {"one": 1.0, "inv_sqrt": 1 / math.sqrt(blocks), "rezero": 0.0}[arch.alpha] if residual else 1.0
    return BlockNetwork(sizes, hidden, output, norm=arch.norm, affine=arch.norm_affine, residual=residual,
                        layers_per_block=arch.layers_per_block if residual else 1,
                        order=arch.order if residual else "post", alpha=alpha,
                        train_alpha=residual and arch.alpha == "rezero", momentum=arch.norm_momentum,
                        eps=arch.norm_eps, bias=arch.bias, dtype=dtype)


def _dataset(cfg: Settings, rng: np.random.Generator, budget: float) -> Dataset:
    """``build_dataset``'s; within ``datasets_shared``, the dataset the build before generated where this one
    would generate the same (the same dataset settings and seed) and check it against the same memory
    budget (``trainer.max_memory_fraction``)."""
    if _shared is None:
        return build_dataset(cfg, rng, budget)
    key = json.dumps([cfg.seed, cfg.dataset, cfg.trainer.max_memory_fraction], sort_keys=True, default=str)
    if key not in _shared:
        _shared.clear()  # the last one only: a sweep of seeds or sizes must not pile its datasets up
        _shared[key] = build_dataset(cfg, rng, budget)
    return _shared[key]


@contextlib.contextmanager
def datasets_shared():
    """Within: builds that only check (a sweep's jobs, one after another, in the launching process) share
    a dataset where they would generate the same: the checks only read it, and generating it again took
    a sixth of a thousand-job sweep's checks (measured).  Runs never share one."""
    global _shared
    _shared, before = {}, _shared
    try:
        yield
    finally:
        _shared = before


_shared: dict[str, Dataset] | None = None  # within datasets_shared: the last dataset built, by its settings
_kept: dict[str, BuiltRun] = {}  # at most one: the run checked last in this process, for the job that follows


def build_once(cfg: DictConfig | dict, keep: bool = False) -> BuiltRun:
    """``build(cfg)``, or the build the check before any work kept for this very config (``keep``): a
    single run is built once.  (A sweep's jobs are checked in the launching process and built again
    where they run: keeping a build per job would hold every job's data in memory.)"""
    settings = Settings.of(cfg)
    if not keep and not _kept:
        return build(settings)
    key = json.dumps(settings, sort_keys=True, default=str)
    built = _kept.pop(key, None) or build(settings)
    _kept.clear()
    if keep:
        _kept[key] = built
    return built


def _input_size(arch: Settings, data: Dataset) -> int:
    n_in = data.n_features if arch.input_size is None else arch.input_size
    _check(n_in == data.n_features, f"architecture.input_size={arch.input_size}: does not match dataset "
                                    f"{data.name!r}, which has {data.n_features} features")
    return n_in


def _output_size(arch: Settings, data: Dataset, loss: Loss, output) -> int:
    """The output units: ``architecture.output_size``, else what the data and the loss need."""
    n_out = data.n_outputs(one_hot=loss.name == "cross_entropy") if arch.output_size is None else arch.output_size
    _check(n_out >= 1, f"architecture.output_size={n_out}: must be >= 1")
    try:
        loss.check_output(output, n_out)
    except ValueError as err:
        raise ConfigError(f"loss={loss.name} with loss.output_activation={output.name} and {n_out} output "
                          f"unit(s): {err}") from None
    if data.classification and arch.output_size is not None:
        fits = (1, 2) if data.n_classes == 2 else (data.n_classes,)
        _check(n_out in fits, f"architecture.output_size={n_out}: dataset {data.name!r} has {data.n_classes} "
                              f"classes: {' or '.join(map(str, fits))} output unit(s) (null chooses)")
    return n_out


def check_targets(loss: str, dataset: str, targets: dict[str, np.ndarray]) -> None:
    """Targets the loss is defined on: in [0, 1] for bce, >= 0 for cross-entropy (-sum y log a is
    bounded below only then)."""
    for split, Y in targets.items():
        if loss == "bce":
            _check(bool(np.all((Y >= 0) & (Y <= 1))), f"loss=bce needs targets in [0, 1]; dataset {dataset!r} has "
                                                       f"{split} targets in [{Y.min():g}, {Y.max():g}]")
        if loss == "cross_entropy":
            _check(bool(np.all(Y >= 0)), f"loss=cross_entropy needs targets >= 0; dataset {dataset!r} has "
                                         f"{split} targets down to {Y.min():g}")


def _initialize(net: Network | BlockNetwork, init: Settings, rng: np.random.Generator) -> tuple[Initializer, Initializer]:
    """The net's weights and biases drawn; returns their initializers."""
    weight_init = _make("init", init.name, INITIALIZERS, _given(init, ("name", *BIAS_PARAMS, "bias_init")))
    bias_init = _bias_initializer(init, weight_init)
    try:
        net.initialize(weight_init, rng, bias_init)
    except ParameterError as err:  # explicit values that do not fit the architecture
        raise config_error("init", err, {"values": "biases"}) from None
    return weight_init, bias_init

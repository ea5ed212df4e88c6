"""From a composed config to the engine's objects: dataset, network, loss, optimizer, trainer.

Everything a user can get wrong is checked here, before any run is opened, and reported as
a ``ConfigError`` whose message names the key, the value and the rule.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from backprop_core import (
    ACTIVATIONS, BIAS_INITIALIZERS, BIAS_MODES, INITIALIZERS, LOSSES, OPTIMIZERS, Network, Trainer,
)
from backprop_core.datasets import Dataset
from backprop_core.losses import Loss

from .datasets import DATASETS

MAX_LOGGED_STEPS = 1000  # per run and key: keeps MLflow's charts fast


class ConfigError(ValueError):
    """A config value breaks a rule; the message names the key, the value and the rule."""


@dataclass
class Experiment:
    """Everything one run needs, built and checked."""

    data: Dataset
    Y_train: np.ndarray
    Y_val: np.ndarray
    net: Network
    loss: Loss
    optimizer: Any
    trainer: Trainer
    shuffle_rng: np.random.Generator


def _given(node: DictConfig, skip: tuple[str, ...] = ("name",)) -> dict[str, Any]:
    """The keys of a config node that are set (not null), as plain Python values."""
    return {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if v is not None and k not in skip}


def _make(key: str, name: str, registry: dict, params: dict[str, Any], *, name_key: str | None = None,
          rng: np.random.Generator | None = None):
    """``registry[name](**params)`` (plus ``rng`` where the factory takes one); an unknown name or
    parameter, or a value the factory rejects, is a ConfigError naming the key."""
    _check(name in registry, f"{name_key or key + '.name'}={name!r} is unknown; valid names: {', '.join(sorted(registry))}")
    factory = registry[name]
    accepted = inspect.signature(factory).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    for param in params:
        if param not in accepted and not takes_any:
            valid = ", ".join(p for p in accepted if p != "rng") or "none"
            raise ConfigError(f"{key}.{param} is not a parameter of {name_key or key}={name!r}; its parameters: {valid}")
    if rng is not None and "rng" in accepted:
        params = params | {"rng": rng}
    try:
        return factory(**params)
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def hidden_sizes(cfg: DictConfig) -> list[int]:
    arch = cfg.architecture
    if arch.name == "deep":
        _check(arch.depth >= 1, f"architecture.depth={arch.depth} must be >= 1")
        _check(arch.width >= 1, f"architecture.width={arch.width} must be >= 1")
        return [arch.width] * arch.depth
    sizes = list(arch.hidden_sizes)
    for i, n in enumerate(sizes):
        _check(n >= 1, f"architecture.hidden_sizes[{i}]={n} must be >= 1")
    return sizes


def build_dataset(cfg: DictConfig, rng: np.random.Generator) -> Dataset:
    return _make("dataset", cfg.dataset.name, DATASETS, _given(cfg.dataset), rng=rng)


def build_trainer(cfg: DictConfig, n_samples: int) -> Trainer:
    t = cfg.trainer
    _check(t.dtype in ("float64", "float32"), f"trainer.dtype={t.dtype!r} must be float64 or float32")
    params = _given(t, skip=("dtype", "check_gradients"))
    try:
        trainer = Trainer(**params)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if t.log_every is None:
        return replace(trainer, log_every=max(1, math.ceil(trainer.total_steps(n_samples) / MAX_LOGGED_STEPS)))
    return trainer


def build(cfg: DictConfig) -> Experiment:
    """Build and check every part of the experiment ``cfg`` describes; raises ConfigError."""
    data_rng, init_rng, shuffle_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(3))
    try:
        data = build_dataset(cfg, data_rng)
        trainer = build_trainer(cfg, len(data.X_train))

        loss = _make("loss", cfg.loss.name, LOSSES, _given(cfg.loss, ("name", "output_activation")))
        hidden = _make("activation", cfg.activation.name, ACTIVATIONS, _given(cfg.activation))
        _check(hidden.elementwise, f"activation={hidden.name!r} is an output activation only (set loss.output_activation)")
        output = _make("loss", cfg.loss.output_activation, ACTIVATIONS, {}, name_key="loss.output_activation")

        arch = cfg.architecture
        n_in = data.n_features if arch.input_size is None else arch.input_size
        _check(n_in == data.n_features,
               f"architecture.input_size={arch.input_size} does not match dataset {data.name!r}, "
               f"which has {data.n_features} features")
        n_out = arch.output_size or data.n_outputs(one_hot=loss.name == "cross_entropy")
        _check(n_out >= 1, f"architecture.output_size={n_out} must be >= 1")
        try:
            loss.check_output(output, n_out)
        except ValueError as err:
            raise ConfigError(f"loss={loss.name} with loss.output_activation={output.name} and {n_out} output "
                              f"unit(s): {err}") from None
        Y_train, Y_val = data.targets(n_out)
        if loss.name == "bce":
            for split, Y in (("train", Y_train), ("val", Y_val)):
                _check(bool(np.all((Y >= 0) & (Y <= 1))),
                       f"loss=bce needs targets in [0, 1]; dataset {data.name!r} has {split} targets in "
                       f"[{Y.min():g}, {Y.max():g}]")

        _check(arch.bias in BIAS_MODES, f"architecture.bias={arch.bias!r} is unknown; valid modes: {', '.join(BIAS_MODES)}")
        net = Network([n_in, *hidden_sizes(cfg), n_out], hidden, output,
                      bias=arch.bias, train_bias=arch.train_bias, dtype=np.dtype(cfg.trainer.dtype))
        init = cfg.init
        weight_init = _make("init", init.name, INITIALIZERS,
                            _given(init, ("name", "bias_init", "bias_value", "bias_std", "biases")))
        bias_params = {"constant": {"value": init.bias_value}, "normal": {"std": init.bias_std},
                       "explicit": {"values": init.biases}}.get(init.bias_init, {})
        bias_init = _make("init", init.bias_init, BIAS_INITIALIZERS,
                          {k: v for k, v in bias_params.items() if v is not None}, name_key="init.bias_init")
        net.initialize(weight_init, init_rng, bias_init)

        optimizer = _make("optimizer", cfg.optimizer.name, OPTIMIZERS, _given(cfg.optimizer))
    except ConfigError:
        raise
    except ValueError as err:  # the engine's own checks already name key, value and rule
        raise ConfigError(str(err)) from None
    return Experiment(data, Y_train, Y_val, net, loss, optimizer, trainer, shuffle_rng)


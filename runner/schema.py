"""Structured config schemas, one dataclass per config group, registered in Hydra's ConfigStore.

A YAML option extends its group's schema (``defaults: [schema]``), so a typo in a key or a
value of the wrong type fails at compose time.  Parameters that only some options take
(``init.std``, ``optimizer.momentum``...) default to ``None`` and are passed on only when
set, so ``init=he_normal init.std=0.5`` is an error naming the parameter, never ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class MLPArchitecture:
    name: str = "mlp"
    hidden_sizes: list[int] = field(default_factory=lambda: [16])
    input_size: Optional[int] = None  # null: the dataset's feature count
    output_size: Optional[int] = None  # null: from the dataset and the loss
    bias: str = "per_unit"  # per_unit | shared | none
    train_bias: bool = True


@dataclass
class DeepArchitecture:
    name: str = "deep"
    depth: int = 5  # hidden layers
    width: int = 32  # units per hidden layer
    input_size: Optional[int] = None
    output_size: Optional[int] = None
    bias: str = "per_unit"
    train_bias: bool = True


@dataclass
class ActivationConfig:
    name: str = MISSING  # the hidden layers' activation
    alpha: Optional[float] = None  # leaky_relu, elu


@dataclass
class LossConfig:
    name: str = MISSING
    output_activation: str = "identity"
    convention: Optional[str] = None  # mse: sum_half | mean;  bce: mean | sum (over outputs)


@dataclass
class InitConfig:
    name: str = MISSING
    std: Optional[float] = None
    mean: Optional[float] = None
    limit: Optional[float] = None
    gain: Optional[float] = None
    value: Optional[float] = None
    seed: Optional[int] = None  # legacy
    scale: Optional[float] = None  # legacy
    weights: Optional[Any] = None  # explicit: one (fan_in, fan_out) nested list per layer
    bias_init: str = "zeros"  # zeros | constant | normal | explicit
    bias_value: Optional[float] = None
    bias_std: Optional[float] = None
    biases: Optional[Any] = None  # explicit: per layer a scalar or one value per unit


@dataclass
class OptimizerConfig:
    name: str = MISSING
    lr: float = MISSING
    momentum: Optional[float] = None
    nesterov: Optional[bool] = None
    rho: Optional[float] = None
    beta1: Optional[float] = None
    beta2: Optional[float] = None
    eps: Optional[float] = None


@dataclass
class DatasetConfig:
    name: str = MISSING
    n_samples: Optional[int] = None
    noise: Optional[float] = None
    val_fraction: Optional[float] = None
    factor: Optional[float] = None  # circles
    n_classes: Optional[int] = None  # spirals, blobs, inline labels
    n_features: Optional[int] = None  # blobs, teacher
    std: Optional[float] = None  # blobs
    center_box: Optional[float] = None  # blobs
    n_outputs: Optional[int] = None  # teacher
    hidden_sizes: Optional[list[int]] = None  # teacher
    activation: Optional[str] = None  # teacher
    output_activation: Optional[str] = None  # teacher
    init: Optional[str] = None  # teacher
    init_params: Optional[dict[str, Any]] = None  # teacher
    bias: Optional[str] = None  # teacher
    X: Optional[Any] = None  # inline
    y: Optional[Any] = None  # inline
    X_val: Optional[Any] = None  # inline
    y_val: Optional[Any] = None  # inline


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
    log_outputs: bool = False  # output/uNN: output unit activations (the articles print them)
    check_gradients: bool = False  # gradient check (central differences) at the initial weights


@dataclass
class TrackingConfig:
    name: str = "mlflow"  # mlflow | none
    uri: Optional[str] = None  # null: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/outputs/mlflow.db
    experiment: Optional[str] = None  # null: the preset's name, else "default"
    detail: str = "standard"  # standard | full


@dataclass
class Config:
    architecture: Any = MISSING
    activation: ActivationConfig = MISSING
    loss: LossConfig = MISSING
    init: InitConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    dataset: DatasetConfig = MISSING
    trainer: TrainerConfig = MISSING
    tracking: TrackingConfig = MISSING
    seed: int = 0
    description: Optional[str] = None  # a preset's one-line summary


def register() -> None:
    """Store the schemas as top-level configs (``activation_schema``...), outside the groups, so
    that they are no option to pick and ``--help`` lists only the real groups."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    cs.store(name="mlp_architecture_schema", node=MLPArchitecture)
    cs.store(name="deep_architecture_schema", node=DeepArchitecture)
    for group, node in (
        ("activation", ActivationConfig), ("loss", LossConfig), ("init", InitConfig),
        ("optimizer", OptimizerConfig), ("dataset", DatasetConfig), ("trainer", TrainerConfig),
        ("tracking", TrackingConfig),
    ):
        cs.store(name=f"{group}_schema", node=node)

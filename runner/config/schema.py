"""The runner's own config schemas: the architectures, the trainer's runner-side keys, tracking, and
the top level.  The schemas of the engine's registries are made from its signatures
(``runner.config.options``); an option's YAML file extends its schema and says only what differs."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Optional

from omegaconf import MISSING

from backprop_core.blocks import ORDERS
from backprop_core.network import BIAS_MODES, HIDDEN_DERIVATIVES
from backprop_core.normalization import NORMS


def _choices(name: str, values) -> type[StrEnum]:
    """A closed choice as an Enum: Hydra refuses any other value when it composes (members are named
    as their values, the names OmegaConf reads from YAML and the command line)."""
    return StrEnum(name, [(value, value) for value in values], module=__name__)


Bias = _choices("Bias", BIAS_MODES)  # per_unit | shared | none: the engine's modes
HiddenDerivative = _choices("HiddenDerivative", HIDDEN_DERIVATIVES)  # exact | one
DType = _choices("DType", ("float64", "float32"))
Norm = _choices("Norm", NORMS)  # none | batch | layer: after every hidden dense layer (a residual branch's too)
Order = _choices("Order", ORDERS)  # pre: norm -> act -> dense (He et al. 2016b); post: dense -> norm -> act
Alpha = _choices("Alpha", ("one", "inv_sqrt", "rezero"))  # a branch's scale: 1, 1/sqrt(blocks), trainable from 0
Tracker = _choices("Tracker", ("mlflow", "none"))
Detail = _choices("Detail", ("standard", "full"))
RunFigures = _choices("RunFigures", ("auto", "always", "never"))
Report = _choices("Report", ("auto", "never"))
Direction = _choices("Direction", ("minimize", "maximize"))
Sampler = _choices("Sampler", ("tpe", "random", "qmc"))  # Optuna's samplers that need no other package
Pruner = _choices("Pruner", ("none", "median", "halving"))  # Optuna's MedianPruner, SuccessiveHalvingPruner


@dataclass
class MLPArchitecture:
    name: str = "mlp"
    hidden_sizes: list[int] = field(default_factory=lambda: [16])
    input_size: Optional[int] = None  # null: the dataset's feature count
    output_size: Optional[int] = None  # null: from the dataset and the loss
    bias: Bias = Bias.per_unit  # a bias per unit, one per layer, or none
    train_bias: bool = True
    hidden_derivative: HiddenDerivative = HiddenDerivative.exact  # one: f'(z) := 1 in the hidden layers' backward pass
    norm: Norm = Norm.none
    norm_affine: bool = True  # the normalization's trainable gamma (from 1) and beta (from 0)
    norm_momentum: float = 0.1  # batch norm's running statistics: running = (1 - m) running + m batch
    norm_eps: float = 1e-5


@dataclass
class DeepArchitecture:
    name: str = "deep"
    depth: int = 5  # hidden layers
    width: int = 32  # units per hidden layer
    input_size: Optional[int] = None
    output_size: Optional[int] = None
    bias: Bias = Bias.per_unit
    train_bias: bool = True
    hidden_derivative: HiddenDerivative = HiddenDerivative.exact
    norm: Norm = Norm.none
    norm_affine: bool = True
    norm_momentum: float = 0.1
    norm_eps: float = 1e-5


@dataclass
class ResidualArchitecture:
    """A stem (dense -> norm -> act), residual blocks h + alpha F(h), an output layer: ``depth`` hidden
    dense layers as in ``deep`` (the stem and (depth - 1) / layers_per_block blocks), so that
    ``-m architecture=deep,residual architecture.depth=8,16`` compares nets of equal depth."""

    name: str = "residual"
    depth: int = 9  # hidden dense layers: the stem and 8 blocks of one layer
    width: int = 32
    layers_per_block: int = 1  # F: 1 or 2 dense layers
    order: Order = Order.pre
    alpha: Alpha = Alpha.one
    input_size: Optional[int] = None
    output_size: Optional[int] = None
    bias: Bias = Bias.per_unit
    norm: Norm = Norm.none
    norm_affine: bool = True
    norm_momentum: float = 0.1
    norm_eps: float = 1e-5


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
    dtype: DType = DType.float64
    log_outputs: bool = False  # output/output_uNN: output unit activations (the articles print them)
    check_gradients: bool = False  # gradient check (central differences) at the initial weights
    jacobian_samples: int = 0  # > 0: singular values of the input-output Jacobian at the initial weights
    threads: Optional[int] = None  # BLAS threads; null: 1, or every core for a job alone with a large net
    max_memory_fraction: float = 0.5  # refuse a run whose arrays would need more of the available memory


@dataclass
class TrackingConfig:
    """One schema for ``mlflow`` and ``none``, so that a preset may set ``tracking.detail`` and
    still run with ``tracking=none``; a ``uri`` or ``experiment`` given to ``none`` is refused
    (``runner.tracking.checks``)."""

    name: Tracker = Tracker.mlflow
    uri: Optional[str] = None  # null: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/outputs/mlflow.db
    experiment: Optional[str] = None  # null: the preset's name, else "default"
    detail: Detail = Detail.standard  # full: every per-layer diagnostic, and distributions
    histogram_every: Optional[int] = None  # full detail: distributions at every N-th logged record and the closing one (null: 10)
    run_figures: RunFigures = RunFigures.auto  # auto: a single run draws its own figures, a sweep's job does not
    report: Report = Report.auto  # auto: a sweep's report is written into its parent run when it ends


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
    max_jobs: int = 10_000  # multirun: a grid of more jobs is refused before it starts (raise it to run one)
    description: Optional[str] = None  # a preset's one-line summary


GROUPS = ("architecture", "activation", "loss", "init", "optimizer", "dataset", "trainer", "tracking")

# keys every init option takes besides its initializer's own parameters: the biases' initializer
BIAS_FIELDS = [("bias_init", str, "zeros"), ("bias_value", Optional[float], None),
               ("bias_std", Optional[float], None), ("biases", Any, None)]
BIAS_PARAMS = {"bias_value": "value", "bias_std": "std", "biases": "values"}  # init.<key> -> factory param


OPTUNA_SWEEPER = "hydra_plugins.backprop_lab_sweepers.optuna_sweeper.OptunaSweeper"  # Hydra finds plugins there only
GRID_SWEEPER = "hydra_plugins.backprop_lab_sweepers.grid_sweeper.GridSweeper"
GRID_SWEEPERS = (GRID_SWEEPER, "hydra._internal.core_plugins.basic_sweeper.BasicSweeper")  # expand a grid


@dataclass
class GridSweeperConfig:
    """``hydra/sweeper=grid``, the default: Hydra's basic sweeper and its settings, minus its second
    composition of every job, plus the order in which a parallel launcher gets them
    (``hydra_plugins/backprop_lab_sweepers/grid_sweeper.py``)."""

    _target_: str = GRID_SWEEPER
    max_batch_size: Optional[int] = None  # jobs launched at once (null: all); a parallel launcher waits per batch
    params: Optional[dict[str, str]] = None  # key: a,b,c | range(...) | glob(...): swept by every command
    longest_first: bool = True  # a parallel launcher gets (and numbers) the longest jobs first; false: grid order


@dataclass
class OptunaSweeperConfig:
    """``hydra/sweeper=optuna``: a Bayesian search on Optuna's ask/tell interface (``runner.sweep.search``),
    its study stored beside the tracking store, so ``resume=true`` continues it after a kill."""

    _target_: str = OPTUNA_SWEEPER
    params: dict[str, str] = field(default_factory=dict)  # key: choice(...) | interval(...) | range(...) | tag(log, ...)
    n_trials: int = 20  # the study's size: the search ends when it holds this many ended trials
    n_jobs: Optional[int] = None  # trials run at once; null: the joblib launcher's n_jobs, else 1
    direction: Direction = Direction.minimize  # of the objective, the final validation loss
    sampler: Sampler = Sampler.tpe
    seed: Optional[int] = None  # the sampler's seed
    pruner: Pruner = Pruner.none  # stops hopeless trials at their logged records; a diverged trial is always pruned
    warmup_steps: int = 0  # the median pruner judges no trial before this training step
    study_name: Optional[str] = None  # null: the experiment's name (name-2, name-3, ... for each new study)
    storage: Optional[str] = None  # null: optuna.db beside the embedded MLflow store (sqlite:///...)
    trial: Optional[int] = None  # set by the sweeper in each job's overrides: the trial the job runs

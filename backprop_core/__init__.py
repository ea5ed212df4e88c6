"""backprop_core: a pure-NumPy backpropagation engine with per-layer gradient diagnostics.

>>> import numpy as np
>>> from backprop_core import Network, get_initializer, get_loss, get_optimizer, fit, Trainer, datasets
"""

from . import block_theory, datasets, theory
from .activations import ACTIVATIONS, SATURATION_EPS, Activation, get_activation
from .diagnostics import DIAGNOSTICS, layer_diagnostics, layer_key
from .distributions import DistributionRecorder
from .gradcheck import GradCheckResult, gradient_check
from .initializers import BIAS_INITIALIZERS, INITIALIZERS, Initializer, get_bias_initializer, get_initializer
from .losses import LOSSES, Loss, get_loss
from .network import BIAS_MODES, Network
from .blocks import ORDERS, BlockNetwork
from .normalization import NORMS
from .optimizers import OPTIMIZERS, Optimizer, chain, clip_by_global_norm, clip_by_value, get_optimizer
from .registry import ParameterError
from .training import Callback, FitResult, History, StopTraining, Trainer, accuracy, fit

__all__ = [
    "ACTIVATIONS", "SATURATION_EPS", "Activation", "get_activation",
    "LOSSES", "Loss", "get_loss",
    "Initializer", "INITIALIZERS", "BIAS_INITIALIZERS", "get_initializer", "get_bias_initializer",
    "OPTIMIZERS", "Optimizer", "get_optimizer", "chain", "clip_by_global_norm", "clip_by_value",
    "BIAS_MODES", "Network", "BlockNetwork", "NORMS", "ORDERS",
    "DIAGNOSTICS", "layer_diagnostics", "layer_key", "DistributionRecorder",
    "GradCheckResult", "gradient_check",
    "Callback", "FitResult", "History", "StopTraining", "Trainer", "accuracy", "fit",
    "ParameterError",
    "datasets", "theory", "block_theory",
]

"""What a run sends to MLflow besides its records: its params, the swept values as numbers, its
summary (``final/*``, the gradient ratio) and its per-layer profiles (step = layer index)."""

from __future__ import annotations

import math

from omegaconf import DictConfig

from backprop_core import FitResult, layer_key

from ..config.recorded import as_recorded
from ..tracking.schema import BLOCK_PROFILES, LOG10_PROFILES, PROFILES

MAX_PARAM_TEXT = 250  # a longer value (explicit weights) stays in config.yaml only


def params_of(cfg: DictConfig, choices: dict[str, str | None]) -> dict[str, str]:
    """The composed group choices and every short leaf value, keyed by dotted path."""
    params = {group: choice for group, choice in choices.items() if choice and not group.startswith("hydra")}
    flat: dict[str, object] = {}

    def walk(node, prefix):
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, f"{path}.")
            elif value is not None and len(str(value)) <= MAX_PARAM_TEXT:
                flat[path] = value

    walk(as_recorded(cfg), "")
    flat.pop("description", None)
    # a group's option is the param ``init``; ``init.name`` would say it again
    return params | {k: str(v) for k, v in flat.items() if not (k.endswith(".name") and k[:-5] in params)}


def swept_values(overrides: dict[str, str]) -> dict[str, float]:
    """The job's numeric overrides (key -> value as typed) as metrics, ``swept/optimizer.lr``: MLflow's
    runs table sorts params as text (``1e-3`` after ``0.1``) but metrics as numbers."""
    values = {}
    for key, value in overrides.items():
        try:
            number = float(value)
        except ValueError:
            continue
        if math.isfinite(number):
            values[f"swept/{key}"] = number
    return values


def summary_metrics(result: FitResult, n_layers: int) -> dict[str, float]:
    """``final/*`` (the closing record's), the first/last layer gradient ratio at step 0 and its log10
    (it spans decades: the runs table reads the exponent), and ``diverged_at_step``."""
    summary = {f"final/{key.replace('/', '_')}": value for key, value in result.final.items()}
    if result.history:
        first = result.history[0]
        last_layer = first[layer_key("grad_norm", n_layers, n_layers)]
        first_layer = first[layer_key("grad_norm", 1, n_layers)]
        ratio = first_layer / last_layer if last_layer else math.nan
        summary["grad_ratio_first_last"] = ratio
        summary["log10_grad_ratio_first_last"] = math.log10(ratio) if ratio > 0 else math.nan
    if result.diverged:
        summary["diverged_at_step"] = float(result.diverged_at_step)
    return summary


def profile_metrics(result: FitResult, n_layers: int, n_blocks: int = 0) -> dict[str, list[float]]:
    """Per-layer profiles as metrics whose step is the layer index 1..L: ``profile/grad_norm_init``
    (step 0's record) and ``profile/grad_norm_final`` (the closing record's), so one MLflow line chart
    draws norm against layer for every selected run; a residual net's per-block ones with step = block."""
    profiles = {}
    counted = [(name, n_layers, "l") for name in PROFILES] + [(name, n_blocks, "b") for name in BLOCK_PROFILES]
    for when, record in (("init", result.history[0]), ("final", result.history[len(result.history) - 1])):
        for name, count, letter in counted:
            values = [record.get(layer_key(name, k, count, letter)) for k in range(1, count + 1)]
            if values and all(v is not None for v in values):
                profiles[f"profile/{name}_{when}"] = values
                if name in LOG10_PROFILES:  # spans decades: the exponent reads on MLflow's default linear axis
                    profiles[f"profile/log10_{name}_{when}"] = [math.log10(v) if v > 0 else math.nan for v in values]
    return profiles

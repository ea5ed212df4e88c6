"""The Hydra app: compose, check, build, train, track; return the objective for sweepers."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from backprop_core import FitResult, fit, gradient_check, layer_key

from .build import ConfigError, build
from .callbacks import sweep_id_of
from .progress import ProgressBar
from .schema import register

register()  # the config schemas, before Hydra composes anything


def run_name(overrides: list[str], preset: str | None) -> str:
    """``activation=relu,init=he_normal,depth=8`` from the job's overrides (keys shortened to their leaf)."""
    parts = []
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if key != "experiment":
            parts.append(f"{key.rsplit('.', 1)[-1]}={value}")
    return ",".join(parts) or preset or "default"


def params_of(cfg: DictConfig, choices: dict[str, str | None]) -> dict[str, str]:
    """The composed group choices and every short leaf value, keyed by dotted path."""
    params = {group: choice for group, choice in choices.items() if choice and not group.startswith("hydra")}
    flat: dict[str, object] = {}

    def walk(node, prefix):
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, f"{path}.")
            elif value is not None and len(str(value)) <= 250:
                flat[path] = value

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    flat.pop("description", None)
    return params | {k: str(v) for k, v in flat.items()}


def summary_metrics(result: FitResult, n_layers: int) -> dict[str, float]:
    summary = {f"final/{key.replace('/', '_')}": value for key, value in result.final.items()}
    if result.history:
        first = result.history[0]
        last_layer = first[layer_key("grad_norm", n_layers, n_layers)]
        first_layer = first[layer_key("grad_norm", 1, n_layers)]
        summary["grad_ratio_first_last"] = first_layer / last_layer if last_layer else math.nan
    if result.diverged:
        summary["diverged_at_step"] = float(result.diverged_at_step)
    return summary


def train(cfg: DictConfig) -> float:
    """Train the composition ``cfg``; returns the final validation loss (inf if it diverged)."""
    try:
        _check_tracking(cfg)
        exp = build(cfg)
    except ConfigError as err:
        print(f"backprop-lab: error: {err}", file=sys.stderr)
        sys.exit(2)

    hydra_cfg = HydraConfig.get()
    choices = dict(hydra_cfg.runtime.choices)
    preset = choices.get("experiment")
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    out_dir = Path(hydra_cfg.runtime.output_dir)
    name = run_name(list(hydra_cfg.overrides.task), preset)

    tracker = None
    if cfg.tracking.name == "mlflow":
        from .tracking import MlflowTracker, resolve_uri

        uri, artifact_root = resolve_uri(cfg.tracking.uri)
        tracker = MlflowTracker(uri, artifact_root, cfg.tracking.experiment or preset or "default", cfg.tracking.detail)
        tags = {"job_num": str(hydra_cfg.job.num if multirun else 0), "overrides": " ".join(hydra_cfg.overrides.task),
                "status": "running", "preset": preset or "none"}
        if multirun:
            tags["sweep_id"] = sweep_id_of(hydra_cfg.sweep.dir)
        tracker.start(name, params_of(cfg, choices), tags)

    callbacks = [ProgressBar(name, disable=True if multirun else None)] + ([tracker] if tracker else [])
    status, result, summary, artifacts = "failed", None, {}, []
    started = time.perf_counter()
    try:  # whatever happens from here on, the MLflow run is closed: finished, diverged or failed
        if cfg.trainer.check_gradients:
            summary |= _gradient_check(exp)
        result = fit(
            exp.net, exp.loss, exp.optimizer, exp.data.X_train, exp.Y_train,
            trainer=exp.trainer, rng=exp.shuffle_rng, validation=(exp.data.X_val, exp.Y_val),
            classification=exp.data.classification, callbacks=callbacks,
        )
        seconds = time.perf_counter() - started
        summary |= summary_metrics(result, exp.net.n_layers)
        artifacts = _write_artifacts(cfg, result, out_dir, name)
        status = "diverged" if result.diverged else "finished"
    finally:
        if tracker:
            tracker.finish(status, summary, artifacts)

    _print_summary(name, status, result, summary, seconds, tracker)
    return summary.get("final/val_loss", math.inf) if status == "finished" else math.inf


def _gradient_check(exp) -> dict[str, float]:
    """Back-propagated against central-difference gradients at the initial weights (64 samples at most)."""
    result = gradient_check(exp.net, exp.data.X_train[:64], exp.Y_train[:64], exp.loss)
    print(f"gradient check at the initial weights: max relative error {result.max_error:.2e} "
          f"({'passed' if result.passed() else 'FAILED'}: rtol 1e-6, atol 1e-9)")
    metrics = {f"gradcheck/{key.replace('/', '_')}": error for key, error in result.errors.items()}
    return metrics | {"gradcheck/max_rel_error": result.max_error}


def _check_tracking(cfg: DictConfig) -> None:
    tracking = cfg.tracking
    if tracking.name not in ("mlflow", "none"):
        raise ConfigError(f"tracking.name={tracking.name!r} is unknown; valid names: mlflow, none")
    if tracking.detail not in ("standard", "full"):
        raise ConfigError(f"tracking.detail={tracking.detail!r} is unknown; valid levels: standard, full")


def _write_artifacts(cfg: DictConfig, result: FitResult, out_dir: Path, title: str) -> list[tuple[Path, str | None]]:
    import pandas as pd

    from .plots import plot_run

    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / "config.yaml"
    config_path.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    history = pd.DataFrame(result.history)
    history_path = out_dir / "history.csv"
    history.to_csv(history_path, index=False, float_format="%.17g")
    artifacts = [(config_path, None), (history_path, None)]
    if len(history):
        artifacts += [(path, "plots") for path in plot_run(history, out_dir / "plots", title)]
    return artifacts


def _print_summary(name, status, result, summary, seconds, tracker) -> None:
    parts = [f"{name}: {status} after {result.steps} steps in {seconds:.1f}s"]
    if "final/train_loss" in summary:
        parts.append(f"train loss {summary['final/train_loss']:.4g}")
    if "final/val_loss" in summary:
        parts.append(f"val loss {summary['final/val_loss']:.4g}")
    if "final/val_accuracy" in summary:
        parts.append(f"val accuracy {summary['final/val_accuracy']:.3f}")
    if "grad_ratio_first_last" in summary:
        parts.append(f"|grad l1| / |grad lL| at step 0 = {summary['grad_ratio_first_last']:.3g}")
    if result.diverged:
        parts.append(f"diverged at step {result.diverged_at_step}")
    print("; ".join(parts))
    if tracker:
        from .tracking import ui_command

        print(f"MLflow: experiment {tracker.experiment!r}, run {tracker.run_id}. Open it with:  {ui_command(tracker.uri)}")


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return train(cfg)

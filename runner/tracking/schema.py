"""The run schema: what a run records in MLflow, declared once.  Job statuses, the tags every run
carries, the metric keys of the per-layer quantities, MLflow's limits.  (No MLflow import: the checks
and the sweep's bookkeeping read these without paying for it.)"""

from __future__ import annotations

import math
import secrets
from enum import StrEnum

from backprop_core.blocks import BLOCK_DIAGNOSTICS


class JobStatus(StrEnum):
    """A job's outcome, the run's ``status`` tag (MLflow's own status says less: see ``mlflow_status``)."""

    running = "running"
    finished = "finished"
    diverged = "diverged"  # a non-finite loss or gradient: a result, not an error
    failed = "failed"
    killed = "killed"
    skipped = "skipped"  # resume=true: an earlier run of the same configuration is reused
    pruned = "pruned"  # a trial of a search stopped early by the study's pruner

    @property
    def mlflow_status(self) -> str:
        """MLflow's run status: FINISHED for a run that produced its result (diverged included)."""
        return {"failed": "FAILED", "killed": "KILLED", "pruned": "KILLED", "running": "RUNNING"}.get(self.value,
                                                                                                     "FINISHED")

    @property
    def has_result(self) -> bool:
        return self in (JobStatus.finished, JobStatus.diverged)


COUNTED = ("jobs", "finished", "diverged", "pruned", "failed", "skipped", "killed")  # a sweep's sweep/<key> metrics

def new_sweep_id() -> str:
    """The id (the ``sweep_id`` tag) of a multirun command's sweep, new for each: its launching process tells
    every job (``runner.processes.SWEEP_ID_OF_JOBS``, in each job's ``hydra.job.env_set``, which a worker on
    another machine receives too).  Derived from the sweep directory, two sweeps run into one folder (a
    fixed ``hydra.sweep.dir``) shared it: the second counted and reported the first's runs as its own."""
    return secrets.token_hex(6)


# tags (besides MLflow's own mlflow.*)
KIND = "kind"  # job | sweep | report
STATUS = "status"  # a JobStatus
SWEEP_ID, JOB_NUM, PREVIOUS_SWEEP_ID = "sweep_id", "job_num", "previous_sweep_id"
CONFIG_HASH, OVERRIDES, PRESET = "config_hash", "overrides", "preset"
VALIDATION = "validation"  # how val/* were measured where it differs from training: batch norm's running statistics
RUNNING_STATISTICS = "batch norm with running statistics (val/* and final/val_*); train/* with the batch's"
HOST, PID, PID_START = "host", "pid", "pid_start"  # who wrote the run: a later command tells an orphan
NOTE, PARENT_RUN = "mlflow.note.content", "mlflow.parentRunId"
OPTUNA_STUDY, OPTUNA_TRIAL, OPTUNA_STATE = "optuna.study", "optuna.trial", "optuna.state"  # a search's trial
OPTUNA_STORAGE = "optuna.storage"  # a search's parent run: where its study is

# metric keys
# a residual net's blocks (numbered b01.. from the input) and its normalizations' gamma and beta
BLOCK_PREFIXES = tuple(f"{name}/" for name in BLOCK_DIAGNOSTICS)
STANDARD_PREFIXES = ("train/", "val/", "grad_norm/", "output/", *BLOCK_PREFIXES)  # what tracking.detail=standard sends
DECADES = ("grad_norm/", "delta_norm/", "update_ratio/", "branch_ratio/", "stream_length/",
           "gamma_grad_norm/", "beta_grad_norm/")  # quantities that span decades: log10 too
PROFILES = ("grad_norm", "delta_norm", "act_std", "saturation")  # profile/<name>_init and _final
BLOCK_PROFILES = ("branch_ratio", "stream_length")  # profile/<name>_init and _final, step = block
LOG10_PROFILES = ("grad_norm", "delta_norm", "branch_ratio", "stream_length")  # also profile/log10_<name>_*


def log10_key(key: str) -> str:
    """``grad_norm/grad_norm_l01`` -> ``log10_grad_norm/log10_grad_norm_l01`` (a section of its own, and a
    chart card that says what it shows); ``profile/grad_norm_init`` -> ``profile/log10_grad_norm_init``."""
    section, _, leaf = key.partition("/")
    return f"profile/log10_{leaf}" if section == "profile" else f"log10_{section}/log10_{leaf}"


# MLflow's limits (mlflow.utils.validation; a test checks they still are): refused before any work
MAX_EXPERIMENT_NAME = 500
MAX_TAG_VALUE = 8000  # a run's tag, its description (mlflow.note.content) included
DEFAULT_EXPERIMENT = "default"  # the experiment of a run with no preset and no tracking.experiment
# tagged on every experiment made here: a model-training one (MLflow 3's UI may read it some day)
MODEL_TRAINING = ("mlflow.experimentKind", "custom_model_development")


# the rules behind the tags gradient_flow and theory_agrees
FLOW_DECADES = 1.0  # |log10 of the gradient norm's change across the net| beyond this: vanishing / exploding
SLOPE_TOLERANCE = (0.1, 0.1)  # agreement: |measured - predicted slope| <= 0.1 + 0.1 |predicted| (ln per layer)


def gradient_flow(measured_slope: float, n_layers: int) -> str:
    """vanishing / stable / exploding: whether the gradient norm changes by more than
    10**FLOW_DECADES across the net, from the measured per-layer slope of ln ||dL/dW||^2."""
    change = measured_slope * (n_layers - 1) / 2 / math.log(10)  # log10 of the norm's change, last -> first layer
    return "vanishing" if change < -FLOW_DECADES else "exploding" if change > FLOW_DECADES else "stable"


def agrees(measured: float, predicted: float) -> bool:
    absolute, relative = SLOPE_TOLERANCE
    return abs(measured - predicted) <= absolute + relative * abs(predicted)

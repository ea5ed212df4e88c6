"""Who a job is (from Hydra's runtime config), how it ended, and its ``job.json``."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from backprop_core import FitResult

from ..config.overrides import key_values, sweep_params, typed_overrides
from ..config.deciding import shortest, tells_the_run_apart
from ..processes import SWEEP_ID_OF_JOBS, VARYING_KEYS
from ..tracking.schema import JobStatus
from .records import write_job_file

MAX_RUN_NAME = 120  # MLflow's runs table shows about this much of a name


@dataclass
class Job:
    """Who this job is, from Hydra's runtime config."""

    name: str
    preset: str | None
    overrides: list[str]
    multirun: bool
    num: int
    out_dir: Path
    sweep_id: str | None
    choices: dict[str, str | None]
    alone: bool = True  # no other job of its sweep runs beside it (a single run, or the basic launcher)
    cwd: Path | None = None  # where the command was started (the job may run in its own directory)
    values: dict[str, str] = field(default_factory=dict)  # the overrides as key -> value, as typed
    preset_sweep: dict[str, str] = field(default_factory=dict)  # hydra.sweeper.params: the preset's own sweep

    @classmethod
    def current(cls) -> Job:
        hydra_cfg = HydraConfig.get()
        choices = dict(hydra_cfg.runtime.choices)
        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        overrides = typed_overrides(hydra_cfg)
        alone = not multirun or "BasicLauncher" in str(hydra_cfg.launcher.get("_target_", ""))
        values = named = key_values(overrides)
        if multirun and VARYING_KEYS in os.environ:  # set by the sweep's launching process
            varying = set(json.loads(os.environ[VARYING_KEYS]))
            named = {key: value for key, value in values.items() if key in varying} or values
        return cls(run_name(named, choices.get("experiment")), choices.get("experiment"), overrides, multirun,
                   hydra_cfg.job.num if multirun else 0, Path(hydra_cfg.runtime.output_dir),
                   os.environ[SWEEP_ID_OF_JOBS] if multirun else None, choices, alone, Path(hydra_cfg.runtime.cwd),
                   values, sweep_params(hydra_cfg))


@dataclass(frozen=True)
class JobResult:
    """What a job returns to its sweeper (small, it crosses process boundaries): how it ended, and the
    objective a sampling sweeper minimises."""

    status: JobStatus
    objective: float
    run_id: str | None = None


@dataclass
class Outcome:
    status: JobStatus
    result: FitResult | None = None
    summary: dict | None = None
    seconds: float = 0.0
    run_id: str | None = None
    detail: str = ""

    @property
    def objective(self) -> float:
        """What a sweeper minimises: the final validation loss; +inf unless the run finished with a finite one
        (with ``trainer.divergence_guard=false`` a run finishes its updates through NaN)."""
        if self.status not in (JobStatus.finished, JobStatus.skipped) or not self.summary:
            return math.inf
        loss = float(self.summary.get("final/val_loss", math.inf))
        return loss if math.isfinite(loss) else math.inf

    @property
    def returned(self) -> JobResult:
        return JobResult(self.status, self.objective, self.run_id)

    @property
    def explanation(self) -> str:
        if self.status == JobStatus.diverged and self.result is not None:
            return f"at step {self.result.diverged_at_step}"
        return self.detail


def run_name(overrides: dict[str, str], preset: str | None) -> str:
    """``activation=relu,init=he_normal,depth=8`` from the job's overrides (keys shortened to their leaf)."""
    parts = [f"{key.rsplit('.', 1)[-1]}={shortest(value)}" for key, value in overrides.items()
             if tells_the_run_apart(key)]
    name = ",".join(parts) or preset or "default"
    return name if len(name) <= MAX_RUN_NAME else name[:MAX_RUN_NAME - 3] + "..."  # the whole is the overrides tag


def record_job(job: Job, outcome: Outcome) -> None:
    """A sweep's job leaves ``job.json`` in its directory: the sweep's summary reads them back."""
    if not job.multirun:
        return
    write_job_file(job.out_dir, {
        "job_num": job.num, "name": job.name, "overrides": job.overrides, "status": str(outcome.status),
        "steps": outcome.result.steps if outcome.result else 0, "seconds": round(outcome.seconds, 3),
        "summary": outcome.summary or {}, "run_id": outcome.run_id, "detail": outcome.explanation,
        "sweep_id": job.sweep_id,
    })

"""How a sweep ends: its summary from the jobs' ``job.json`` (counts, the jobs that diverged or
failed), its parent run closed (``runner.sweep.parent_run``); or, interrupted, what finished kept."""

from __future__ import annotations

import functools
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from ..config.errors import SweepFailed
from ..processes import thaw_heap
from ..run.records import read_job_files
from ..tracking.schema import JobStatus
from .composed_once import ComposedOnce
from .joblib_workers import JoblibWorkers
from .parent_opening import OpenedParent
from .search_space import is_sampling


@dataclass
class Sweep:
    """A sweep this process launches: what its end needs."""

    sweep_id: str
    n_jobs: int  # planned (a sampler's trials)
    directory: str
    compositions: ComposedOnce
    opened: OpenedParent | None  # its parent run with tracking=mlflow, else None
    report_mode: str  # tracking.report
    started: float
    workers: JoblibWorkers | None = None  # with hydra/launcher=joblib
    ended: bool = field(default=False, init=False)  # its jobs are done (jobs_done)

    @functools.cached_property
    def parent(self):
        """The parent run (a ``ParentRun``), None with tracking=none; made on first use, as its module imports
        MLflow (which this process imports while the jobs run: ``parent_opening``)."""
        if self.opened is None:
            return None
        from .parent_run import ParentRun

        return ParentRun.of(self.opened, self.sweep_id, self.directory, self.report_mode)

    def jobs_done(self) -> None:
        """No job is left to launch: what served them is let go (before the report), once."""
        if self.ended:
            return
        self.ended = True
        self.compositions.discard()
        if self.workers:
            self.workers.release()
        thaw_heap()  # frozen as the sweep was prepared (ChecksAndSweep)

    def close(self, config: DictConfig) -> None:
        """The closing summary, printed and written into the parent run; failed jobs raise ``SweepFailed``."""
        self.jobs_done()
        records = read_job_files(Path(self.directory), self.sweep_id)
        counts: dict[str, int] = {"jobs": self.n_jobs}  # planned, as in an interrupted sweep's counts
        for record in records:
            counts[record["status"]] = counts.get(record["status"], 0) + 1
        if len(records) < self.n_jobs and not is_sampling(config):  # a job ended without its file (killed -9)
            counts["missing"] = self.n_jobs - len(records)
        jobs = f"{self.n_jobs} job{'s' * (self.n_jobs != 1)}"
        lines = [f"sweep {self.sweep_id}: {jobs} in {time.perf_counter() - self.started:.1f}s "
                 f"({listed_counts(counts) or 'none recorded'})"]
        lines += [f"  {record['status']}: #{record['job_num']} {record['name']}"
                  + (f" - {record['detail']}" if record.get("detail") else "")
                  for record in records if record["status"] in (JobStatus.diverged, JobStatus.failed, JobStatus.skipped)]
        print("\n".join(lines))
        if self.parent:
            self.parent.close(counts, "\n".join(lines) + "\n")
        # tracking=none: the report is not drawn unasked (it imports pandas and matplotlib and draws for seconds,
        # which a sweep without tracking does not pay), its command is printed
        if not self.parent and self.report_mode == "auto" and records:
            print(f"The sweep's report (figures and tables of every run): {shlex.quote(sys.executable)} -m "
                  f"runner.report --folder {shlex.quote(self.directory)}")
        if config.tracking.run_figures == "auto" and records:
            command = self.parent.run_figures_command() if self.parent else \
                f"{shlex.quote(sys.executable)} -m runner.figures {shlex.quote(self.directory)}"
            print(f"Each run's own figures (left out of a sweep's jobs): {command}")
        if counts.get(JobStatus.failed):
            raise SweepFailed(f"{counts[JobStatus.failed]} of {self.n_jobs} jobs failed")

    def close_interrupted(self, reason: str) -> str:
        """Ctrl-C or SIGTERM stopped the sweep: its runs are closed as killed; returns what was done."""
        self.jobs_done()
        if not self.parent:
            return "the sweep stopped"
        seconds = time.perf_counter() - self.started
        return self.parent.close_interrupted(self.n_jobs, lambda counts: (
            f"sweep {self.sweep_id}: {self.n_jobs} jobs, interrupted ({reason}) after {seconds:.1f}s "
            f"({listed_counts(counts)})\n"))


def listed_counts(counts: dict[str, int]) -> str:
    """``2 finished, 1 killed``: the statuses counted, without the total."""
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()) if status != "jobs")


_launching: list[Sweep] = []  # the sweep this process is launching, until it ends (Ctrl-C closes it)


def launching(sweep: Sweep | None) -> None:
    _launching[:] = [sweep] if sweep else []


def current() -> Sweep | None:
    """The sweep this process is launching (a sweeper reads its parent run), if any."""
    return _launching[0] if _launching else None


def close_interrupted_sweep(reason: str) -> str | None:
    """After Ctrl-C or SIGTERM in this process: close the sweep it was launching, if any; None when it
    launched none."""
    return _launching.pop().close_interrupted(reason) if _launching else None

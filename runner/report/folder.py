"""Reading a sweep's folder for the report, where no store holds its runs (``tracking=none``): one row
per job from its ``job.json`` (name, status, summary), its ``config.yaml`` and ``.hydra/hydra.yaml``
(the params MLflow would hold), and its files read in place (``readers.READERS``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from ..config.errors import ConfigError
from ..processes import heap_frozen
from .readers import READERS
from .tables import markdown
from .write import write_report


def load_folder(folder: Path) -> tuple[pd.DataFrame, dict[str, dict]]:
    """``(runs, artifacts)`` of the jobs in the sweep ``folder``, with the columns and files a report reads
    (as ``load.load_runs`` and ``load.load_artifacts`` give them from a store); a job killed before it
    wrote ``job.json`` is left out."""
    from ..run.metrics import params_of  # here: it reads configs as a run records them (Hydra's import)

    rows, artifacts = [], {name: {} for name in READERS}
    for path in sorted(Path(folder).glob("**/job.json")):
        job_dir = path.parent
        try:
            job = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a job killed while writing it
        run_id = str(job_dir.relative_to(folder))
        hydra = job_dir / ".hydra" / "hydra.yaml"  # not there with hydra.output_subdir=null
        choices = dict(OmegaConf.load(hydra).hydra.runtime.choices) if hydra.is_file() else {}
        config = job_dir / "config.yaml"  # not there when the job failed before it trained
        params = params_of(OmegaConf.load(config), choices) if config.is_file() else {}
        rows.append({"run_id": run_id, "run_name": job["name"], "status": job["status"], "order": job["job_num"],
                     "overrides": " ".join(job.get("overrides", [])),
                     "searched": choices.get("hydra/sweeper") == "optuna"}
                    | {f"params.{k}": v for k, v in params.items()}
                    | {f"metrics.{k}": v for k, v in (job.get("summary") or {}).items()})
        for name, read in READERS.items():
            if (job_dir / name).is_file():
                artifacts[name][run_id] = read(job_dir / name)
    if not rows:
        raise ConfigError(f"--folder={folder}", "holds no job.json: not a sweep's folder, or no job of it ended")
    return pd.DataFrame(rows).sort_values(["order"]).reset_index(drop=True), artifacts


def report_of_folder(sweep: Path, out: Path | None = None, quiet: bool = False) -> Path:
    """The report of a sweep no store holds (``tracking=none``), from its folder, into ``out`` (by default
    its ``report/``); nothing goes to MLflow.  Returns the report's folder."""
    with heap_frozen():  # the process's objects are not walked again and again (``report.make.report``)
        runs, artifacts = load_folder(sweep)
        folder = out or Path(sweep) / "report"
        table, _ = write_report(folder, str(sweep), runs, artifacts)
    if not quiet:
        print(f"report: {len(runs)} runs of {str(sweep)!r} -> {folder}")
        print(markdown(table))
    return folder

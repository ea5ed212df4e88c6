"""What a job leaves on disk: its history streamed to ``history.csv`` as it trains, a small
``job.json`` that the sweep's summary reads back, and the hash that identifies its configuration."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from backprop_core import Callback

NOT_DECIDING = ("tracking", "resume", "description")  # keys that do not change what a run computes
NOT_DECIDING_TRAINER = ("max_memory_fraction",)  # a guard, not a setting of the computation


def config_hash(cfg: DictConfig) -> str:
    """A hash of the resolved config that decides the result: everything but tracking, resume, the
    description and the memory guard (output paths and launcher settings live in the ``hydra`` node,
    never here)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    deciding = {k: v for k, v in container.items() if k not in NOT_DECIDING and k != "hydra"}
    deciding["trainer"] = {k: v for k, v in deciding["trainer"].items() if k not in NOT_DECIDING_TRAINER}
    text = json.dumps(deciding, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def as_recorded(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as a plain dict, but for values read from the environment
    (``${oc.env:TOKEN}``), kept as written: a secret passed that way never reaches the store."""
    def merge(raw: Any, resolved: Any) -> Any:
        if isinstance(raw, dict):
            return {key: merge(raw[key], resolved[key]) for key in raw}
        if isinstance(raw, list):
            return [merge(a, b) for a, b in zip(raw, resolved)]
        return raw if isinstance(raw, str) and "oc.env:" in raw else resolved

    return merge(OmegaConf.to_container(cfg, resolve=False), OmegaConf.to_container(cfg, resolve=True))


def description_of(cfg: DictConfig) -> str | None:
    """The preset's (or the command line's) description, as recorded (see ``as_recorded``)."""
    raw = OmegaConf.to_container(cfg, resolve=False).get("description")
    return raw if isinstance(raw, str) and "oc.env:" in raw else cfg.get("description")


class HistoryCsv(Callback):
    """Streams every logged record to ``path`` as it arrives (full precision: ``repr`` of each float
    round-trips), so a run of a million logged steps needs no history in memory, and a killed run
    still leaves the steps it made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = None
        self.writer = None

    def on_fit_start(self, net, total_steps: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "w", newline="")

    def on_step(self, record: dict[str, float]) -> None:
        if self.writer is None:
            self.writer = csv.DictWriter(self.file, fieldnames=list(record), restval="", extrasaction="raise")
            self.writer.writeheader()
        self.writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in record.items()})

    def on_fit_end(self, result) -> None:
        self.close()

    def close(self) -> None:
        if self.file is not None and not self.file.closed:
            self.file.close()


def write_job_record(folder: Path, record: dict[str, Any]) -> None:
    """``job.json`` in a job's directory: what the sweep summary needs, whatever the tracking."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.json").write_text(json.dumps(record, indent=1, default=str))


def read_job_records(sweep_dir: Path) -> list[dict[str, Any]]:
    records = []
    for path in Path(sweep_dir).glob("**/job.json"):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # a job killed while writing it: counted as missing
    return sorted(records, key=lambda r: int(r.get("job_num", 0)))

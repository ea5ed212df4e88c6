"""What a job leaves on disk: its history streamed to ``history.csv`` as it trains, and a small
``job.json`` that the sweep's summary reads back."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from backprop_core import Callback

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


def write_job_file(folder: Path, record: dict[str, Any]) -> None:
    """``job.json`` in a job's directory: what the sweep summary needs, whatever the tracking."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.json").write_text(json.dumps(record, indent=1, default=str))


def read_job_files(sweep_dir: Path, sweep_id: str) -> list[dict[str, Any]]:
    """The ``job.json`` of the jobs of sweep ``sweep_id`` below ``sweep_dir``: not those an earlier sweep into
    the same folder left (a fixed ``hydra.sweep.dir``), which it had counted as its own."""
    records = []
    for path in Path(sweep_dir).glob("**/job.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a job killed while writing it: counted as missing
        if record.get("sweep_id") == sweep_id:
            records.append(record)
    return sorted(records, key=lambda r: int(r.get("job_num", 0)))

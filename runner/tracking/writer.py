"""The MLflow writer of one run: a fit-loop callback that sends the records in batches (with the
``log10`` of what spans decades), then the artifacts, figures, summary and status of the run."""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from PIL import Image  # matplotlib's own dependency

from backprop_core import Callback

from ..processes import interruptions_deferred
from .runs import process_tags
from .schema import DECADES, NOTE, STANDARD_PREFIXES, STATUS, JobStatus, log10_key

BATCH = 1000  # MLflow's log_batch takes at most 1000 metrics a call


def log_image(client: MlflowClient, run_id: str, path: Path, step: int, preview: Image.Image | None = None) -> None:
    """A run's figure also as an image record (key: the file's stem), so the chart view's image grid
    shows it; ``step`` is the run's closing step.  The record's PNG is the figure's file, copied: MLflow
    would decode it and encode it again (two fifths of the time it takes, measured).  Its thumbnail is
    made from ``preview`` (a smaller copy of the same pixels, ``style.previews_kept``) if given, else
    from the file's pixels."""
    with Image.open(path) if preview is None else contextlib.nullcontext(preview) as image:
        image.save = lambda target, *args, **kwargs: shutil.copyfile(path, target)  # MLflow's image.save(file)
        client.log_image(run_id, image, key=path.stem, step=step)


class MlflowTracker(Callback):
    """Buffers the fit loop's records and sends them with ``log_batch`` (MLflow's client splits a batch
    into calls it accepts) every ``BATCH`` points."""

    def __init__(self, client: MlflowClient, experiment_id: str, experiment: str, detail: str) -> None:
        self.client = client
        self.uri = client.tracking_uri
        self.experiment_id = experiment_id
        self.experiment = experiment
        self.keep = (lambda key: key.startswith(STANDARD_PREFIXES)) if detail == "standard" else (lambda key: True)
        self.buffer: list[Metric] = []
        self.run_id: str | None = None
        self.parent_run_id: str | None = None  # the sweep's parent run, for a job of a sweep
        self.last_step = 0  # the step the run's figures are logged at: its closing record's

    def start(self, run_name: str, params: dict[str, Any], tags: dict[str, str], description: str | None) -> str:
        if description:
            tags = tags | {NOTE: description}
        with interruptions_deferred():  # the run made and its id kept, or no run: ``finish`` closes what is made
            self.run_id = self.client.create_run(self.experiment_id, run_name=run_name,
                                                 tags=tags | process_tags()).info.run_id
        self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        return self.run_id

    def on_step(self, record: dict[str, float]) -> None:
        step, now = int(record["step"]), int(time.time() * 1000)
        self.last_step = step
        kept = [(key, float(value)) for key, value in record.items() if key not in ("step", "epoch") and self.keep(key)]
        self.buffer.extend(Metric(key, value, now, step) for key, value in kept)
        self.buffer.extend(Metric(log10_key(key), math.log10(value), now, step) for key, value in kept
                           if key.startswith(DECADES) and value > 0)
        if len(self.buffer) >= BATCH:
            self.flush()

    def flush(self, tags: list[RunTag] = ()) -> None:
        """Send the buffered points, and ``tags``."""
        if self.buffer or tags:
            self.client.log_batch(self.run_id, metrics=self.buffer, tags=list(tags))
        self.buffer = []

    def finish(self, status: JobStatus, summary: dict[str, float], artifacts: list[tuple[Path, str | None]],
               error: str | None = None, profiles: dict[str, list[float]] | None = None,
               tags: dict[str, str] | None = None) -> None:
        """Send the artifacts, then what is buffered with the summary metrics, the profiles (step = layer
        index 1..L), the status and ``tags``; close the run (``JobStatus.mlflow_status``)."""
        try:
            for path, folder in artifacts:
                if path.exists():
                    self.client.log_artifact(self.run_id, str(path), folder)
                    if folder == "plots":
                        log_image(self.client, self.run_id, path, self.last_step)
            now = int(time.time() * 1000)
            self.buffer.extend(Metric(k, float(v), now, 0) for k, v in summary.items())
            self.buffer.extend(Metric(key, float(v), now, layer) for key, values in (profiles or {}).items()
                               for layer, v in enumerate(values, start=1))
            run_tags = [RunTag(STATUS, status)] + ([RunTag("error", error[:4000])] if error else [])
            self.flush(tags=run_tags + [RunTag(k, v) for k, v in (tags or {}).items()])
        finally:
            self.client.set_terminated(self.run_id, status.mlflow_status)

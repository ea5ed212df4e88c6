"""MLflow tracking: where the store is, opening it safely, and a fit-loop callback that sends
metrics in batches.  Also the store-wide chores of a command: runs orphaned by a killed process
are closed, and a resumed sweep finds the runs it can reuse.

Only imported when ``tracking=mlflow``: ``tracking=none`` never imports MLflow.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

# bounded retries for an HTTP store: MLflow's defaults (7 retries, 120 s timeout) hang for minutes
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

from filelock import FileLock  # noqa: E402
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from backprop_core import Callback  # noqa: E402

from .processes import Interrupted, process_alive, process_start_time  # noqa: E402
from .sqlite_store import ensure_whole  # noqa: E402
from .stores import MODEL_TRAINING, path_part  # noqa: E402

log = logging.getLogger(__name__)

BATCH = 1000  # MLflow's log_batch takes at most 1000 metrics a call
STANDARD_PREFIXES = ("train/", "val/", "grad_norm/", "output/")
# per-layer quantities that span decades: also logged as log10, so MLflow's default linear axis reads exponents
DECADES = ("grad_norm/", "delta_norm/", "update_ratio/")


def log10_key(key: str) -> str:
    """``grad_norm/grad_norm_l01`` -> ``log10_grad_norm/log10_grad_norm_l01`` (a section of its own, and a
    chart card that says what it shows); ``profile/grad_norm_init`` -> ``profile/log10_grad_norm_init``."""
    section, _, leaf = key.partition("/")
    return f"profile/log10_{leaf}" if section == "profile" else f"log10_{section}/log10_{leaf}"


def open_store(uri: str, source: str | None = None, create: bool = True,
               artifact_root: str | None = None) -> MlflowClient:
    """A client of the store at ``uri``; a sqlite store is made whole or found whole, under an
    inter-process lock (``runner.sqlite_store``), else ConfigError naming ``source``.  With
    ``create=False`` (a command that only reads) a store that is not whole is refused, never changed.

    MLflow creates a fresh sqlite store by running its migrations; several processes doing so at
    once fail (``duplicate column name``), and one killed among them leaves the store unusable.
    MLflow caches the store per process, so only the first use in each process needs the lock.
    """
    if uri in _OPENED:
        return MlflowClient(uri)
    with store_lock(uri):  # the client itself may open the store: create it under the lock too
        if uri.startswith("sqlite:///"):
            ensure_whole(Path(uri.removeprefix("sqlite:///")), source or f"tracking.uri={uri}", create, artifact_root)
        client = MlflowClient(uri)
        client.search_experiments(max_results=1)
    _OPENED.add(uri)
    return client


_OPENED: set[str] = set()  # the stores this process has opened (and so found or made whole)


def store_lock(uri: str):
    """An inter-process lock beside a sqlite store (``mlflow.db.lock``); a no-op for a server."""
    if not uri.startswith("sqlite:///"):
        return _NoLock()
    path = Path(uri.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(f"{path}.lock", timeout=300)


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str | None,
                      description: str | None = None) -> str:
    """The id of experiment ``name``, created if needed (under the store's lock: concurrent
    commands create it once)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        with store_lock(client.tracking_uri):
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                location = f"{artifact_root}/{path_part(name)}" if artifact_root else None
                tags = dict([MODEL_TRAINING]) | ({"mlflow.note.content": description} if description else {})
                try:
                    return client.create_experiment(name, artifact_location=location, tags=tags)
                except MlflowException:  # a server's other client created it first
                    experiment = client.get_experiment_by_name(name)
                    if experiment is None:
                        raise
    return experiment.experiment_id


def close_orphans(client: MlflowClient, sweep_id: str | None = None, wait_seconds: float = 0.0) -> list[str]:
    """Mark KILLED every run left RUNNING on this host by a process that is gone (``kill -9``,
    a lost machine); returns their names.  Runs of other hosts are left alone: we cannot tell.
    With ``sweep_id``, only that sweep's job runs, once their processes end (workers being stopped
    get up to ``wait_seconds``)."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    query = f"attributes.status = 'RUNNING' and tags.host = '{socket.gethostname()}'"
    if sweep_id:
        query += f" and tags.sweep_id = '{sweep_id}' and tags.kind = 'job'"
    running = [r for r in client.search_runs(experiments, query, max_results=5000) if "pid" in r.data.tags]

    def gone(run) -> bool:
        return not process_alive(int(run.data.tags["pid"]), run.data.tags.get("pid_start"))

    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline and not all(gone(run) for run in running):
        time.sleep(0.1)
    closed = []
    for run in filter(gone, running):
        client.set_tag(run.info.run_id, "status", "killed")
        client.set_terminated(run.info.run_id, "KILLED")
        closed.append(run.info.run_name)
    if closed and not sweep_id:
        log.warning("marked %d run(s) killed whose process is gone: %s", len(closed), ", ".join(closed))
    return closed


def reusable_run(client: MlflowClient, experiment_id: str, config_hash: str):
    """The newest finished or diverged run of this configuration in the experiment, or None."""
    runs = client.search_runs([experiment_id], f"tags.config_hash = '{config_hash}' and attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=20)
    return next((r for r in runs if r.data.tags.get("status") in ("finished", "diverged")), None)


def start_sweep_run(client: MlflowClient, experiment_id: str, name: str, sweep_id: str, command: str,
                    description: str | None) -> str:
    """The sweep's parent run: every job's run is its child (``mlflow.parentRunId``), so the runs
    table shows the sweep as one collapsible row.  It carries host and pid like any run, so a
    killed sweep's parent is closed as killed too."""
    tags = {"kind": "sweep", "sweep_id": sweep_id, "status": "running", "command": command[:4000]} | process_tags()
    if description:
        tags["mlflow.note.content"] = description
    return client.create_run(experiment_id, run_name=name, tags=tags).info.run_id


def show_in_note(client: MlflowClient, run_id: str, artifact: str, caption: str) -> None:
    """``artifact`` (a figure of the run's) drawn in the run's description, below what it says: the run's
    page in MLflow's UI shows it on opening (a relative link: the UI fetches it from its own server)."""
    note = client.get_run(run_id).data.tags.get("mlflow.note.content", "")
    image = f"![{caption}](get-artifact?path={quote(artifact, safe='')}&run_uuid={run_id})"
    client.set_tag(run_id, "mlflow.note.content", f"{note}\n\n**{caption}**\n\n{image}\n".lstrip())


def sweep_run(client: MlflowClient, experiment_id: str, sweep_id: str):
    """The parent run of sweep ``sweep_id`` in the experiment, or None (a sweep run by an older version)."""
    runs = client.search_runs([experiment_id], f"tags.sweep_id = '{sweep_id}' and tags.kind = 'sweep'", max_results=1)
    return runs[0] if runs else None


def finish_sweep_run(client: MlflowClient, run_id: str, counts: dict[str, int], summary: str,
                     status: str | None = None) -> None:
    """Close the parent with the sweep's counts (metrics ``sweep/<status>``) and its summary text;
    its status is ``failed`` if a job failed, else ``finished``, unless ``status`` (``killed``) says."""
    status = status or ("failed" if counts.get("failed") else "finished")
    metrics = [Metric(f"sweep/{key}", float(counts.get(key, 0)), int(time.time() * 1000), 0)
               for key in ("jobs", "finished", "diverged", "failed", "skipped", "killed")]
    try:
        client.log_batch(run_id, metrics=metrics, tags=[RunTag("status", status)])
        client.log_text(run_id, summary, "sweep_summary.txt")
    finally:
        client.set_terminated(run_id, {"failed": "FAILED", "killed": "KILLED"}.get(status, "FINISHED"))


def sweep_job_statuses(client: MlflowClient, experiment_id: str, sweep_id: str) -> dict[str, int]:
    """How many of the sweep's job runs are finished, diverged, failed, killed, skipped (reused), running."""
    runs = client.search_runs([experiment_id], f"tags.sweep_id = '{sweep_id}' and tags.kind = 'job'",
                              max_results=50000)
    # a run an earlier sweep made and this one reused (resume=true) counts as skipped, as in the summary
    return dict(Counter("skipped" if "previous_sweep_id" in run.data.tags else run.data.tags.get("status", "running")
                        for run in runs))


def sweep_run_ids(client: MlflowClient, experiment_id: str, sweep_id: str) -> list[str]:
    """The ids of the sweep's job runs that finished or diverged, in job order."""
    runs = client.search_runs([experiment_id], f"tags.sweep_id = '{sweep_id}' and tags.kind = 'job'", max_results=50000)
    done = [r for r in runs if r.data.tags.get("status") in ("finished", "diverged")]
    return [r.info.run_id for r in sorted(done, key=lambda r: int(r.data.tags.get("job_num", 0)))]


def ui_command(uri: str) -> str:
    """The command that opens ``uri`` in MLflow's UI, runnable from a fresh shell (no venv needed)."""
    beside = Path(sys.executable).parent / "mlflow"
    program = shlex.quote(str(beside)) if beside.exists() else f"{shlex.quote(sys.executable)} -m mlflow"
    return f"{program} ui --backend-store-uri {shlex.quote(uri)}"


UI = "http://127.0.0.1:5000"  # where ``mlflow ui`` serves by default


def runs_url(experiment_id: str) -> str:
    """The experiment's runs table (MLflow 3 opens a bare ``#/experiments/<id>`` on its GenAI overview)."""
    return f"{UI}/#/experiments/{experiment_id}/runs"


def run_url(experiment_id: str, run_id: str, artifact: str | None = None) -> str:
    """A run's page, or with ``artifact`` its artifact view opened on that file."""
    page = f"{UI}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"{page}/artifacts/{artifact}" if artifact else page


def chart_url(experiment_id: str, run_ids: list[str], metric: str) -> str:
    """MLflow's metric page: ``metric`` of every run in ``run_ids`` on one chart (the URL its own
    "plot chart" link builds); a profile metric's step is the layer index."""
    runs, keys = json.dumps(run_ids, separators=(",", ":")), json.dumps([metric])
    query = (f"runs={runs}&metric={quote(json.dumps(metric))}&experiments={json.dumps([experiment_id])}"
             f"&plot_metric_keys={quote(keys)}&plot_layout={{}}&x_axis=step&y_axis_scale=linear"
             "&line_smoothness=1&show_point=true&deselected_curves=[]&last_linear_y_axis_range=[]")
    return f"{UI}/#/metric?{query}"


def log_image(client: MlflowClient, run_id: str, path: Path, step: int) -> None:
    """A run's figure also as an image record (key: the file's stem), so the chart view's image grid
    shows it; ``step`` is the run's closing step."""
    from PIL import Image  # matplotlib's own dependency

    with Image.open(path) as image:
        client.log_image(run_id, image.convert("RGB"), key=path.stem, step=step)


def process_tags() -> dict[str, str]:
    """host, pid and the pid's start time: enough for a later command to tell an orphan."""
    tags = {"host": socket.gethostname(), "pid": str(os.getpid())}
    start = process_start_time(os.getpid())
    if start is not None:
        tags["pid_start"] = start
    return tags


class MlflowTracker(Callback):
    """Buffers the fit loop's records and sends them with ``log_batch``, at most 1000 points a call."""

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
            tags = tags | {"mlflow.note.content": description}
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags | process_tags())
        self.run_id = run.info.run_id
        items = [Param(k, str(v)) for k, v in params.items()]
        try:
            for i in range(0, len(items), 100):  # log_batch takes at most 100 params a call
                self.client.log_batch(self.run_id, params=items[i:i + 100])
        except BaseException as err:  # never left RUNNING; Ctrl-C may land here, as the run starts
            killed = isinstance(err, (KeyboardInterrupt, Interrupted))
            self.client.set_tag(self.run_id, "status", "killed" if killed else "failed")
            self.client.set_terminated(self.run_id, "KILLED" if killed else "FAILED")
            raise
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
        """Send the buffered points, at most 1000 a call; ``tags`` go with the last call."""
        batches = [self.buffer[i:i + BATCH] for i in range(0, len(self.buffer), BATCH)]
        for batch in batches[:-1]:
            self.client.log_batch(self.run_id, metrics=batch)
        if batches or tags:
            self.client.log_batch(self.run_id, metrics=batches[-1] if batches else (), tags=tags)
        self.buffer = []

    def finish(self, status: str, summary: dict[str, float], artifacts: list[tuple[Path, str | None]],
               error: str | None = None, profiles: dict[str, list[float]] | None = None,
               tags: dict[str, str] | None = None) -> None:
        """Send the artifacts, then what is buffered with the summary metrics, the profiles (step = layer
        index 1..L), the status and ``tags``; close the run (FINISHED for finished and diverged runs, FAILED or
        KILLED otherwise)."""
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
            run_tags = [RunTag("status", status)] + ([RunTag("error", error[:4000])] if error else [])
            self.flush(tags=run_tags + [RunTag(k, v) for k, v in (tags or {}).items()])
        finally:
            state = {"failed": "FAILED", "killed": "KILLED"}.get(status, "FINISHED")
            self.client.set_terminated(self.run_id, state)

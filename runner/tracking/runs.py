"""The store-wide bookkeeping of runs: orphans of killed commands closed, a resumed sweep's reusable
runs found, a sweep's parent run opened and closed with its counts."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter
from urllib.parse import quote

from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from ..processes import process_alive, process_start_time
from .schema import (COUNTED, HOST, JOB_NUM, KIND, NOTE, OPTUNA_STUDY, OPTUNA_TRIAL, PARENT_RUN, PID, PID_START,
                     PREVIOUS_SWEEP_ID, STATUS, SWEEP_ID, JobStatus)

log = logging.getLogger(__name__)


def process_tags(pid: int | None = None) -> dict[str, str]:
    """host, pid (this process's, or ``pid`` on this host) and the pid's start time: enough for a later command
    to tell an orphan."""
    pid = os.getpid() if pid is None else pid
    tags = {HOST: socket.gethostname(), PID: str(pid)}
    start = process_start_time(pid)
    if start is not None:
        tags[PID_START] = start
    return tags


def close_orphans(client: MlflowClient, sweep_id: str | None = None, wait_seconds: float = 0.0) -> list[str]:
    """Mark KILLED every run left RUNNING on this host by a process that is gone (``kill -9``,
    a lost machine); returns their names.  Runs of other hosts are left alone: we cannot tell.
    With ``sweep_id``, only that sweep's job runs, once their processes end (workers being stopped
    get up to ``wait_seconds``)."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    query = f"attributes.status = 'RUNNING' and tags.{HOST} = '{socket.gethostname()}'"
    if sweep_id:
        query += f" and {_jobs_of(sweep_id)}"
    running = [r for r in client.search_runs(experiments, query, max_results=5000) if PID in r.data.tags]

    def gone(run) -> bool:
        return not process_alive(int(run.data.tags[PID]), run.data.tags.get(PID_START))

    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline and not all(gone(run) for run in running):
        time.sleep(0.1)
    closed = []
    for run in filter(gone, running):
        client.set_tag(run.info.run_id, STATUS, JobStatus.killed)
        client.set_terminated(run.info.run_id, JobStatus.killed.mlflow_status)
        closed.append(run.info.run_name)
    if closed and not sweep_id:
        log.warning("marked %d run(s) killed whose process is gone: %s", len(closed), ", ".join(closed))
    return closed


def reusable_run(client: MlflowClient, experiment_id: str, config_hash: str):
    """The newest finished or diverged run of this configuration in the experiment, or None."""
    runs = client.search_runs([experiment_id], f"tags.config_hash = '{config_hash}' and attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=20)
    return next((r for r in runs if _status(r).has_result), None)


def trial_run(client: MlflowClient, experiment_id: str, study: str, number: int):
    """The run that ended trial ``number`` of ``study`` (finished, diverged or pruned), or None."""
    runs = client.search_runs([experiment_id], f"tags.`{OPTUNA_STUDY}` = '{study}' and tags.`{OPTUNA_TRIAL}` = "
                                               f"'{number}' and attributes.status != 'RUNNING'", max_results=20)
    return next((r for r in runs if _status(r).has_result or _status(r) == JobStatus.pruned), None)


def adopt_study_runs(client: MlflowClient, experiment_id: str, study: str, sweep_id: str, parent_run_id: str) -> int:
    """The runs that ended trials of ``study`` in the searches a continued one (``resume=true``) goes on from
    join its sweep ``sweep_id``, as a resumed grid's reused runs do (children of ``parent_run_id``;
    ``previous_sweep_id`` keeps where they were): its report and chart link cover the whole study (its
    closing counts, the jobs this command ran).  Runs of killed jobs stay where they are (their trials
    run again).  Returns how many joined."""
    runs = client.search_runs([experiment_id], f"tags.`{OPTUNA_STUDY}` = '{study}' and tags.{KIND} = 'job' and "
                                               f"attributes.status != 'RUNNING'", max_results=50000)
    joining = [r for r in runs if r.data.tags.get(SWEEP_ID) != sweep_id and _status(r) != JobStatus.killed]
    for run in joining:
        tags = {PREVIOUS_SWEEP_ID: run.data.tags.get(SWEEP_ID, ""), SWEEP_ID: sweep_id, PARENT_RUN: parent_run_id}
        client.log_batch(run.info.run_id, tags=[RunTag(key, value) for key, value in tags.items()])
    return len(joining)


def start_sweep_run(client: MlflowClient, experiment_id: str, name: str, sweep_id: str, command: str,
                    description: str | None, owner_pid: int | None = None) -> str:
    """The sweep's parent run: every job's run is its child (``mlflow.parentRunId``), so the runs
    table shows the sweep as one collapsible row.  It carries host and pid like any run (the launching
    process's, ``owner_pid``, when another process opens it), so a killed sweep's parent is closed as
    killed too."""
    tags = {KIND: "sweep", SWEEP_ID: sweep_id, STATUS: JobStatus.running, "command": command[:4000]} \
        | process_tags(owner_pid)
    if description:
        tags[NOTE] = description
    return client.create_run(experiment_id, run_name=name, tags=tags).info.run_id


def show_in_note(client: MlflowClient, run_id: str, artifact: str, caption: str) -> None:
    """``artifact`` (a figure of the run's) drawn in the run's description, below what it says: the run's
    page in MLflow's UI shows it on opening (a relative link: the UI fetches it from its own server)."""
    note = client.get_run(run_id).data.tags.get(NOTE, "")
    image = f"![{caption}](get-artifact?path={quote(artifact, safe='')}&run_uuid={run_id})"
    client.set_tag(run_id, NOTE, f"{note}\n\n**{caption}**\n\n{image}\n".lstrip())


def sweep_run(client: MlflowClient, experiment_id: str, sweep_id: str):
    """The parent run of sweep ``sweep_id`` in the experiment, or None (a sweep run by an older version)."""
    runs = client.search_runs([experiment_id], f"tags.{SWEEP_ID} = '{sweep_id}' and tags.{KIND} = 'sweep'", max_results=1)
    return runs[0] if runs else None


def finish_sweep_run(client: MlflowClient, run_id: str, counts: dict[str, int], summary: str,
                     status: JobStatus | None = None) -> None:
    """Close the parent with the sweep's counts (metrics ``sweep/<status>``) and its summary text;
    its status is ``failed`` if a job failed, else ``finished``, unless ``status`` (``killed``) says."""
    status = status or (JobStatus.failed if counts.get(JobStatus.failed) else JobStatus.finished)
    metrics = [Metric(f"sweep/{key}", float(counts.get(key, 0)), int(time.time() * 1000), 0) for key in COUNTED]
    try:
        client.log_batch(run_id, metrics=metrics, tags=[RunTag(STATUS, status)])
        client.log_text(run_id, summary, "sweep_summary.txt")
    finally:
        client.set_terminated(run_id, status.mlflow_status)


def sweep_job_statuses(client: MlflowClient, experiment_id: str, sweep_id: str) -> dict[str, int]:
    """How many of the sweep's job runs are finished, diverged, failed, killed, skipped (reused), running."""
    runs = client.search_runs([experiment_id], _jobs_of(sweep_id), max_results=50000)
    # a run an earlier sweep made and this one reused (resume=true) counts as skipped, as in the summary; one
    # that joined from the earlier search a continued one goes on from is not one of its jobs
    ours = [run for run in runs if not (PREVIOUS_SWEEP_ID in run.data.tags and OPTUNA_STUDY in run.data.tags)]
    return dict(Counter(JobStatus.skipped if PREVIOUS_SWEEP_ID in run.data.tags else _status(run) for run in ours))


def sweep_run_ids(client: MlflowClient, experiment_id: str, sweep_id: str) -> list[str]:
    """The ids of the sweep's job runs that finished or diverged, in job order."""
    runs = client.search_runs([experiment_id], _jobs_of(sweep_id), max_results=50000)
    done = [r for r in runs if _status(r).has_result]
    return [r.info.run_id for r in sorted(done, key=lambda r: int(r.data.tags.get(JOB_NUM, 0)))]


def _jobs_of(sweep_id: str) -> str:
    return f"tags.{SWEEP_ID} = '{sweep_id}' and tags.{KIND} = 'job'"


def _status(run) -> JobStatus:
    """A run's status tag (a run an older version left without one: running)."""
    return JobStatus(run.data.tags.get(STATUS, JobStatus.running))



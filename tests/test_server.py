"""A real ``mlflow server`` on 127.0.0.1: a sweep tracks to it over HTTP via MLFLOW_TRACKING_URI."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """``mlflow server`` with a sqlite backend and a local artifact root; stopped with its workers."""
    port = free_port()
    root = tmp_path / "server"
    root.mkdir()
    mlflow = Path(sys.executable).parent / "mlflow"
    log = open(root / "server.log", "w")
    server = subprocess.Popen(
        [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # its own process group: we stop them all
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            stop_group(server)
            raise RuntimeError(f"mlflow server did not start:\n{(root / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    try:
        yield url
    finally:
        stop_group(server)
        log.close()


def group_members(pgid: int) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "pid=,pgid=,stat=,args="], capture_output=True, text=True).stdout
    return [line.strip() for line in listing.splitlines()
            if line.split()[1] == str(pgid) and not line.split()[2].startswith("Z")]


def stop_group(server: subprocess.Popen) -> None:
    """SIGTERM to the server's whole process group, SIGKILL to whatever outlives 30 s; then none is left."""
    os.killpg(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while group_members(server.pid) and time.monotonic() < deadline:
        server.poll()
        time.sleep(0.2)
    if group_members(server.pid):
        os.killpg(server.pid, signal.SIGKILL)
        time.sleep(1)
    server.wait(timeout=10)
    assert group_members(server.pid) == [], "mlflow server processes outlived the test"


def test_a_sweep_tracks_to_a_real_server_over_http(tmp_path, mlflow_server):
    work = tmp_path / "work"
    work.mkdir()
    done = run_cli(work, "-m", "architecture.depth=1,2", "trainer.epochs=15", "tracking.experiment=team",
                   env={"MLFLOW_TRACKING_URI": mlflow_server})
    assert done.returncode == 0, done.stderr
    assert f"mlflow ui --backend-store-uri {mlflow_server}" in done.stdout
    assert not (work / "outputs" / "mlflow.db").exists()  # nothing went to the embedded store

    client = MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("team").experiment_id], "tags.kind = 'job'")
    assert sorted(r.info.run_name for r in runs) == [f"depth={d},epochs=15" for d in (1, 2)]
    assert len({r.data.tags["sweep_id"] for r in runs}) == 1
    # the sweep is a parent run on the server too: closed with its counts, every job its child
    (parent,) = client.search_runs([client.get_experiment_by_name("team").experiment_id], "tags.kind = 'sweep'")
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep/finished"] == 2
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    for run in runs:
        assert run.info.status == "FINISHED" and run.data.tags["status"] == "finished"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "grad_norm/grad_norm_l01")]
        assert steps == list(range(16))  # 15 updates and the closing record
        assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"config.yaml", "history.csv", "plots"}
        history = Path(client.download_artifacts(run.info.run_id, "history.csv", str(tmp_path)))
        assert len(history.read_text().splitlines()) == 17  # header, 15 updates, the closing record
    # resume finds the runs on the server by their config_hash tag and trains nothing
    again = run_cli(work, "-m", "architecture.depth=1,2", "trainer.epochs=15", "tracking.experiment=team",
                    "resume=true", env={"MLFLOW_TRACKING_URI": mlflow_server})
    assert again.returncode == 0 and "(2 skipped)" in again.stdout, again.stdout + again.stderr
    assert len(client.search_runs([client.get_experiment_by_name("team").experiment_id], "tags.kind = 'job'")) == 2

"""A real ``mlflow server`` on 127.0.0.1: a sweep tracks to it over HTTP via MLFLOW_TRACKING_URI."""

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import run_cli, store_uri
from runner.tracking.links import NO_JOB_RUNNERS, ui_command
from servers import group_members, serve_command, serve_mlflow


@pytest.fixture
def mlflow_server(tmp_path):
    """``mlflow server`` with a sqlite backend."""
    with serve_mlflow(tmp_path / "server", f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}") as url:
        yield url


def test_a_sweep_tracks_to_a_real_server_over_http(tmp_path, mlflow_server):
    work = tmp_path / "work"
    work.mkdir()
    done = run_cli(work, "-m", "architecture.depth=1,2", "trainer.epochs=15", "tracking.experiment=team",
                   env={"MLFLOW_TRACKING_URI": mlflow_server})  # its report too: histories downloaded from the server
    assert done.returncode == 0, done.stderr
    # the server shows its own UI: its address in every link, no `mlflow ui` command to run
    assert f"MLflow: the server's UI:  {mlflow_server}" in done.stdout and "mlflow ui" not in done.stdout
    assert f"  the sweep's runs:      {mlflow_server}/#/experiments/" in done.stdout
    # and only those: not MLflow's own two a run (its experiment link opens the GenAI overview)
    assert "View run" not in done.stdout and "View experiment" not in done.stdout
    assert not (work / "outputs" / "mlflow.db").exists()  # nothing went to the embedded store

    client = MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("team").experiment_id], "tags.kind = 'job'")
    assert sorted(r.info.run_name for r in runs) == [f"depth={d}" for d in (1, 2)]  # what varies
    assert len({r.data.tags["sweep_id"] for r in runs}) == 1
    # the sweep is a parent run on the server too: closed with its counts, every job its child
    (parent,) = client.search_runs([client.get_experiment_by_name("team").experiment_id], "tags.kind = 'sweep'")
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep/finished"] == 2
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    assert "report/grad_profile.png" in {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    for run in runs:
        assert run.info.status == "FINISHED" and run.data.tags["status"] == "finished"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "grad_norm/grad_norm_l01")]
        assert steps == list(range(16))  # 15 updates and the closing record
        files = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert files >= {"config.yaml", "history.csv"} and "plots" not in files  # a sweep's job: drawn on demand
        history = Path(client.download_artifacts(run.info.run_id, "history.csv", str(tmp_path)))
        assert len(history.read_text().splitlines()) == 17  # header, 15 updates, the closing record
    # resume finds the runs on the server by their config_hash tag and trains nothing
    again = run_cli(work, "-m", "tracking.report=never", "architecture.depth=1,2", "trainer.epochs=15", "tracking.experiment=team",
                    "resume=true", env={"MLFLOW_TRACKING_URI": mlflow_server})
    assert again.returncode == 0 and "(2 skipped)" in again.stdout, again.stdout + again.stderr
    assert len(client.search_runs([client.get_experiment_by_name("team").experiment_id], "tags.kind = 'job'")) == 2
    # a name differing from the server's experiment only in case: refused in one line as the store is opened
    # (MLflow would list "team" and "TEAM" both), with no experiment or run made
    twin = run_cli(work, "tracking.experiment=TEAM", "trainer.epochs=1", env={"MLFLOW_TRACKING_URI": mlflow_server})
    assert twin.returncode == 2 and twin.stderr.strip().splitlines() == [
        "backprop-lab: error: tracking.experiment=TEAM: the store has 'team', a name differing only in case "
        "(MLflow would list both): use 'team', or another name"], twin.stderr
    assert client.get_experiment_by_name("TEAM") is None


def test_a_run_without_a_preset_goes_into_the_server_s_own_default_experiment(tmp_path, mlflow_server):
    # MLflow's server made its store with experiment 0 'Default': a run with no preset and no
    # tracking.experiment goes there (it was refused as a case twin of our 'default'), not into a second one
    done = run_cli(tmp_path, "trainer.epochs=2", env={"MLFLOW_TRACKING_URI": mlflow_server})
    assert done.returncode == 0, done.stderr
    client = MlflowClient(mlflow_server)
    assert [e.name for e in client.search_experiments()] == ["Default"]
    (run,) = client.search_runs(["0"])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"config.yaml", "history.csv"}
    assert f"MLflow: experiment 'Default', run {run.info.run_id}, on the server {mlflow_server}" in done.stdout
    assert f"  the run's page:  {mlflow_server}/#/experiments/0/runs/{run.info.run_id}?workflowType=machine_learning" in done.stdout
    assert "View run" not in done.stdout and "View experiment" not in done.stdout  # MLflow's own links, left out
    # 'default', the name the docs give it, means the same experiment (it was refused as a case twin of 'Default')
    named = run_cli(tmp_path, "trainer.epochs=2", "tracking.experiment=default", env={"MLFLOW_TRACKING_URI": mlflow_server})
    assert named.returncode == 0, named.stderr
    assert [e.name for e in client.search_experiments()] == ["Default"] and len(client.search_runs(["0"])) == 2
    # and its report is found under that name too
    report = subprocess.run([sys.executable, "-m", "runner.report", "default", "--no-mlflow", "--uri", mlflow_server],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0 and "report: 2 runs of 'Default'" in report.stdout, report.stderr


def test_a_store_mlflow_ui_made_before_any_run_takes_the_default_run(tmp_path):
    # `make ui` first: MLflow makes the file with 'Default' (its artifacts behind a server: mlflow-artifacts:/0)
    store = tmp_path / "outputs" / "mlflow.db"
    store.parent.mkdir()
    with serve_mlflow(tmp_path / "ui", f"sqlite:///{store}"):
        pass
    done = run_cli(tmp_path, "trainer.epochs=2")
    assert done.returncode == 0, done.stderr  # it was refused: 'Default', a name differing only in case
    client = MlflowClient(f"sqlite:///{store}")
    (run,) = client.search_runs([client.get_experiment_by_name("default").experiment_id])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"config.yaml", "history.csv"}
    named = run_cli(tmp_path, "trainer.epochs=2", "tracking.experiment=default")  # was refused: 'Default' is here
    assert named.returncode == 0, named.stderr
    assert len(client.search_runs([client.get_experiment_by_name("default").experiment_id])) == 2


def test_make_ui_runs_the_command_a_run_prints_for_the_project_s_store():
    """``make ui`` spells the printed command out (a Makefile cannot call ``ui_command``): the same switches."""
    root = Path(__file__).resolve().parents[1]
    lines = (root / "Makefile").read_text().splitlines()
    recipe = lines[next(i for i, line in enumerate(lines) if line.startswith("ui:")) + 1].strip()
    program = Path(sys.executable).parent  # the venv's bin, $(BIN) where the tests run from the Makefile's venv
    assert recipe.replace("$(BIN)", str(program)).replace("$(CURDIR)", str(root)) == \
        ui_command(f"sqlite:///{root}/outputs/mlflow.db")


def test_the_printed_ui_command_serves_the_store_without_mlflow_s_job_runners(tmp_path):
    # what a run prints, pasted into a fresh shell: MLflow's UI on the store, without the seven GenAI
    # job-runner processes MLflow 3.17 starts by default (they took the cores from a fresh UI's first page)
    done = run_cli(tmp_path, "trainer.epochs=2")
    assert done.returncode == 0, done.stderr
    command = re.search(r"Open it with:\s+(.+)$", done.stdout, re.M).group(1)
    assert command.startswith(f"{NO_JOB_RUNNERS} /") and " ui --workers 1 --backend-store-uri sqlite:///" in command
    experiments = [e.experiment_id for e in MlflowClient(store_uri(tmp_path)).search_experiments()]
    with serve_command(command, tmp_path / "ui") as (url, server):
        search = urllib.request.Request(f"{url}/ajax-api/2.0/mlflow/runs/search", headers={"Content-Type": "application/json"},
                                        data=json.dumps({"experiment_ids": experiments}).encode())
        with urllib.request.urlopen(search, timeout=60) as response:
            assert len(json.load(response)["runs"]) == 1
        members = group_members(server.pid)
        assert any(" ui --workers 1 --backend-store-uri" in m for m in members), members
        assert not any("huey" in m or "_job_runner" in m for m in members), members
        # one server process: uvicorn's own, no worker processes spawned beside it (four by default)
        assert sum("-m uvicorn" in m for m in members) == 1 and not any("multiprocessing" in m for m in members), members

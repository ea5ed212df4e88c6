"""Bayesian search on Optuna's ask/tell (``hydra/sweeper=optuna``): a stored study, trials told how they
ended (a diverged one pruned), the best trial and Optuna's figures in the parent run, resume after
``kill -9`` without repeating a trial, pruning, and optuna-dashboard serving the study."""

import contextlib
import json
import math
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from conftest import run_cli, store_uri
from servers import free_port, stop_group
from test_store_reliability import start, stop

optuna.logging.set_verbosity(optuna.logging.WARNING)
TINY = ["tracking.report=never", "architecture.depth=2", "architecture.width=8", "trainer.epochs=30"]


def study_of(cwd: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{cwd / 'outputs' / 'optuna.db'}")


def runs_of(cwd: Path, experiment: str) -> list:
    client = MlflowClient(store_uri(cwd))
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id])


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A 4-trial search over two learning rates of a ReLU net: 50 diverges, 0.01 trains."""
    cwd = tmp_path_factory.mktemp("search")
    done = run_cli(cwd, "-m", "experiment=optuna_deep_tanh", "hydra.sweeper.n_trials=4", "activation=relu",
                   "optimizer.lr=choice(0.01,50)", "init.std=choice(0.3)", "trainer.epochs=60", "tracking.report=never")
    assert done.returncode == 0, done.stderr
    return cwd, done.stdout


def test_trials_are_told_how_they_ended_and_a_diverged_one_is_pruned(searched):
    cwd, _ = searched
    study = study_of(cwd, "optuna_deep_tanh")
    assert len(study.trials) == 4
    states = {trial.params["optimizer.lr"]: set() for trial in study.trials}
    for trial in study.trials:
        states[trial.params["optimizer.lr"]].add(trial.state.name)
    assert states == {50: {"PRUNED"}, 0.01: {"COMPLETE"}}  # TPE (seed 0) tries both
    assert study.best_params == {"optimizer.lr": 0.01, "init.std": 0.3}

    jobs = [r for r in runs_of(cwd, "optuna_deep_tanh") if r.data.tags["kind"] == "job"]
    by_trial = {int(r.data.tags["optuna.trial"]): r for r in jobs}
    assert sorted(by_trial) == [0, 1, 2, 3] and len(jobs) == 4
    for trial in study.trials:
        run = by_trial[trial.number]
        assert run.data.tags["optuna.state"] == trial.state.name
        assert run.data.tags["optuna.study"] == "optuna_deep_tanh"
        if trial.state.name == "COMPLETE":  # the objective is the run's own final validation loss
            assert (run.info.status, run.data.tags["status"]) == ("FINISHED", "finished")
            assert trial.value == run.data.metrics["final/val_loss"]
            assert trial.intermediate_values == {}  # no pruner, no reports (each is a write to the study)
        else:
            assert (run.info.status, run.data.tags["status"]) == ("FINISHED", "diverged")  # as in any sweep


def test_the_parent_run_holds_the_best_trial_and_optunas_figures(searched):
    cwd, stdout = searched
    study = study_of(cwd, "optuna_deep_tanh")
    (parent,) = [r for r in runs_of(cwd, "optuna_deep_tanh") if r.data.tags["kind"] == "sweep"]
    assert parent.data.tags["optuna.study"] == "optuna_deep_tanh"
    assert parent.data.params == {"best.optimizer.lr": "0.01", "best.init.std": "0.3"}
    assert parent.data.metrics["best/objective"] == study.best_value
    assert parent.data.metrics["best/trial"] == study.best_trial.number
    assert parent.data.metrics["sweep/pruned"] == 0 and parent.data.metrics["sweep/jobs"] == 4
    client = MlflowClient(store_uri(cwd))
    figures = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "study")}
    assert figures == {"optimization_history.png", "slice.png"}  # one parameter varies: a slice, no contour
    images = {Path(a.path).name.split("+")[0] for a in client.list_artifacts(parent.info.run_id, "images")}
    assert {"optimization_history", "slice"} <= images
    assert f"optuna-dashboard sqlite:///{cwd / 'outputs' / 'optuna.db'}" in stdout
    assert f"best of 4 trials: #{study.best_trial.number} optimizer.lr=0.01 init.std=0.3" in stdout


def test_optuna_dashboard_serves_the_stored_study(searched):
    cwd, _ = searched
    port = free_port()
    dashboard = Path(sys.executable).parent / "optuna-dashboard"
    server = subprocess.Popen([str(dashboard), f"sqlite:///{cwd / 'outputs' / 'optuna.db'}", "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as response:
                    studies = json.load(response)["study_summaries"]
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "optuna-dashboard did not start"
                time.sleep(0.5)
        (study,) = studies
        assert study["study_name"] == "optuna_deep_tanh"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{study['study_id']}", timeout=10) as response:
            trials = json.load(response)["trials"]
        assert sorted(t["number"] for t in trials) == [0, 1, 2, 3]
    finally:
        stop_group(server)


def test_a_new_search_is_a_new_study_and_resume_continues_the_latest(tmp_path):
    from omegaconf import OmegaConf

    from runner.sweep.study import study_name, study_storage

    def config(resume, study=None, experiment=None):
        return OmegaConf.create({"resume": resume, "tracking": {"name": "mlflow", "uri": None, "experiment": experiment},
                                 "hydra": {"sweeper": {"storage": None, "study_name": study},
                                           "runtime": {"cwd": str(tmp_path), "choices": {"experiment": None}}}})

    storage = study_storage(config(False))
    assert storage == f"sqlite:///{tmp_path / 'outputs' / 'optuna.db'}"  # beside the embedded MLflow store
    with pytest.raises(Exception, match="resume=true: there is no study 'default' to continue"):
        study_name(config(True), storage)
    assert not (tmp_path / "outputs" / "optuna.db").exists()  # a refusal writes nothing
    assert study_name(config(False), storage) == "default"
    (tmp_path / "outputs").mkdir()
    for name in ("default", "default-2", "defaults", "other"):
        optuna.create_study(study_name=name, storage=storage)
    assert study_name(config(False), storage) == "default-3"
    assert study_name(config(True), storage) == "default-2"
    assert study_name(config(True, experiment="other"), storage) == "other"
    assert study_name(config(False, study="mine"), storage) == "mine"


@pytest.mark.parametrize("launcher", [pytest.param([], marks=pytest.mark.slow),
                                      ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]], ids=["basic", "joblib"])
def test_a_search_killed_with_kill_9_resumes_without_repeating_a_trial(tmp_path, launcher):
    args = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=12", "hydra.sweeper.seed=0",
            "optimizer.lr=tag(log,interval(0.01,1))", "init=normal", "init.std=tag(log,interval(0.05,1))",
            *TINY, "trainer.epochs=150", *launcher]
    search = start(tmp_path, *args)
    deadline = time.monotonic() + 240
    while not (states(tmp_path).get("COMPLETE", 0) >= 5 and states(tmp_path).get("RUNNING")):
        assert search.poll() is None and time.monotonic() < deadline, "the search ended before it was killed"
        time.sleep(0.05)
    stop(search, signal.SIGKILL)
    killed = study_of(tmp_path, "default")
    ended = sum(t.state.is_finished() for t in killed.trials)
    assert 4 <= ended < 12 and any(t.state.name == "RUNNING" for t in killed.trials)
    left_running = {t.number: t.params for t in killed.trials if t.state.name == "RUNNING"}

    resumed = run_cli(tmp_path, *args, "resume=true")
    assert resumed.returncode == 0, resumed.stderr
    study = study_of(tmp_path, "default")
    assert [t.number for t in study.trials] == list(range(12))  # 12 trials, none asked twice
    assert {t.state.name for t in study.trials} == {"COMPLETE"}
    assert {n: study.trials[n].params for n in left_running} == left_running  # run again as they were
    assert len({tuple(t.params.values()) for t in study.trials}) == 12  # the resumed sampler draws on
    finished = [r for r in runs_of(tmp_path, "default")
                if r.data.tags["kind"] == "job" and r.info.status == "FINISHED"]
    assert sorted(int(r.data.tags["optuna.trial"]) for r in finished) == list(range(12))  # one FINISHED run each


def test_a_continued_search_is_one_sweep_and_its_report_covers_the_whole_study(tmp_path):
    """``resume=true`` continues the study: the runs of its ended trials join the new sweep (as a resumed
    grid's reused runs do), so its parent holds every trial's run and its report covers them all, each
    sampled param an axis of its own (the learning rate and the init's scale both differ in every run)."""
    import pandas as pd

    args = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.seed=0", "optimizer.lr=tag(log,interval(0.01,1))",
            "init=normal", "init.std=tag(log,interval(0.05,1))", *TINY[1:]]
    first = run_cli(tmp_path, *args, "hydra.sweeper.n_trials=3", "tracking.report=never")
    assert first.returncode == 0, first.stderr
    resumed = run_cli(tmp_path, *args, "hydra.sweeper.n_trials=5", "resume=true")
    assert resumed.returncode == 0, resumed.stderr
    assert "3 trials ended (their runs join this sweep), 2 to run" in resumed.stdout
    assert ": a search of 5 trial(s) checked (its space at its corners);" in resumed.stdout  # not "5 job(s)"

    runs = runs_of(tmp_path, "default")
    parents = sorted((r for r in runs if r.data.tags["kind"] == "sweep"), key=lambda r: r.info.start_time)
    jobs = [r for r in runs if r.data.tags["kind"] == "job"]
    assert len(parents) == 2 and len(jobs) == 5
    first_sweep, sweep = (p.data.tags["sweep_id"] for p in parents)
    assert {r.data.tags["sweep_id"] for r in jobs} == {sweep}
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs} == {parents[1].info.run_id}
    assert sorted(r.data.tags.get("previous_sweep_id", "") for r in jobs) == ["", "", first_sweep, first_sweep, first_sweep]
    from runner.tracking.runs import sweep_job_statuses  # an interrupted sweep's counts: its own jobs only

    assert sweep_job_statuses(MlflowClient(store_uri(tmp_path)), jobs[0].info.experiment_id, sweep) == {"finished": 2}

    (page,) = re.findall(r"^report of the sweep \(.*\): (\S+)$", resumed.stdout, re.M)
    summary = pd.read_csv(tmp_path / Path(page).parent / "summary.csv")
    assert len(summary) == 5 and {"optimizer.lr", "init.std"} <= set(summary.columns)


def states(cwd: Path) -> dict[str, int]:
    """The study's trials by state, read without writing (Optuna would create its tables in a new file)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{cwd / 'outputs' / 'optuna.db'}?mode=ro", uri=True)) as db:
            return dict(db.execute("SELECT state, COUNT(*) FROM trials GROUP BY state").fetchall())
    except sqlite3.OperationalError:  # no file or no table yet
        return {}


def test_the_median_pruner_stops_hopeless_trials_at_a_record(tmp_path):
    done = run_cli(tmp_path, "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=9", "hydra.sweeper.sampler=random",
                   "hydra.sweeper.seed=0", "hydra.sweeper.pruner=median", "hydra.sweeper.warmup_steps=20",
                   "optimizer.lr=choice(0.3,0.0001)", *TINY, "trainer.epochs=100", "trainer.log_every=10")
    assert done.returncode == 0, done.stderr
    study = study_of(tmp_path, "default")
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert pruned and {t.params["optimizer.lr"] for t in pruned} == {0.0001}
    runs = {int(r.data.tags["optuna.trial"]): r for r in runs_of(tmp_path, "default") if r.data.tags["kind"] == "job"}
    for trial in pruned:
        run = runs[trial.number]
        assert (run.info.status, run.data.tags["status"], run.data.tags["optuna.state"]) == ("KILLED", "pruned", "PRUNED")
        last = max(trial.intermediate_values)
        assert 20 <= last < 100  # stopped at a record after the warm-up, before the end
        assert sorted(trial.intermediate_values) == list(range(0, last + 1, 10))  # reported at every record
        assert "final/val_loss" not in run.data.metrics or run.data.metrics["final/val_loss"] > 0
    assert f"{len(pruned)} pruned" in done.stdout


def test_a_sweepers_objective_is_inf_unless_the_run_finished_with_a_finite_loss():
    from runner.run.job import Outcome

    assert Outcome("finished", summary={"final/val_loss": 0.25}).objective == 0.25
    assert Outcome("skipped", summary={"final/val_loss": 0.5}).objective == 0.5  # a reused run's
    assert Outcome("finished", summary={"final/val_loss": math.nan}).objective == math.inf  # divergence_guard=false
    assert Outcome("diverged", summary={"final/val_loss": 0.1}).objective == math.inf
    assert Outcome("pruned", summary={"final/val_loss": 0.1}).objective == math.inf
    assert Outcome("failed").objective == math.inf


def test_a_trial_whose_run_ended_before_the_search_was_killed_is_told_from_its_run(tmp_path):
    """The job closes its run, then tells the study; a search killed in between leaves the trial RUNNING
    with a FINISHED run: the resumed search tells the study from that run instead of running it again."""
    import socket

    (tmp_path / "outputs").mkdir()
    study = optuna.create_study(study_name="default", storage=f"sqlite:///{tmp_path / 'outputs' / 'optuna.db'}")
    trial = study.ask({"optimizer.lr": optuna.distributions.FloatDistribution(0.01, 1.0, log=True)})
    trial.set_user_attr("sweeper", f"{socket.gethostname()}:999999999:None")  # a search that is gone
    client = MlflowClient(store_uri(tmp_path))
    run = client.create_run(client.create_experiment("default"),
                            tags={"kind": "job", "status": "finished", "optuna.study": "default", "optuna.trial": "0"})
    client.log_batch(run.info.run_id, metrics=[Metric("final/val_loss", 0.125, 0, 0)])
    client.set_terminated(run.info.run_id, "FINISHED")

    resumed = run_cli(tmp_path, "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=1", "resume=true",
                      "optimizer.lr=tag(log,interval(0.01,1))", *TINY)
    assert resumed.returncode == 0, resumed.stderr
    assert "1 trial ended (its run joins this sweep), 0 to run" in resumed.stdout  # told from its run, not run again
    (told,) = study_of(tmp_path, "default").trials
    assert (told.state.name, told.value) == ("COMPLETE", 0.125)

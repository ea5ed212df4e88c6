"""Sweeps that survive: concurrent commands on a fresh store, killed runs and sweeps, resume,
failed jobs, bounded memory, the same bits on every launcher.  Real processes, real signals,
the real sqlite store, read back through MlflowClient."""

import contextlib
import copy
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from omegaconf import OmegaConf
from mlflow.tracking import MlflowClient
import runner.run.train
from runner.processes import LAUNCHER_PID
from runner.sweep.callback import ChecksAndSweep
from runner.tracking.store import open_store

from conftest import run_cli, store_uri
from test_bad_input import run_in_process


def all_runs(cwd: Path, kind="job"):
    """The jobs' runs (or, with ``kind="sweep"``, the sweeps' parent runs)."""
    client = open_store(store_uri(cwd))  # under the store's lock: the commands may be creating it
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000)
    return [r for r in runs if r.data.tags.get("kind") == kind]


def start_cli(cwd: Path, *args: str, output=subprocess.PIPE) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.Popen([sys.executable, "-m", "runner", *args], cwd=cwd, env=environment,
                            stdout=output, stderr=output, text=True)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.parametrize("repeats", [1, pytest.param(5, marks=pytest.mark.slow)])
def test_six_commands_at_once_on_a_fresh_store_all_succeed(tmp_path, repeats):
    for trial in range(repeats):
        cwd = tmp_path / f"trial{trial}"
        cwd.mkdir()
        commands = [
            *(("activation=tanh",), ("activation=relu",), ("activation=sigmoid",)),
            *(("-m", "tracking.report=never", f"architecture.depth={d},{d + 1}") for d in (1, 3, 5)),
        ]
        processes = [start_cli(cwd, *args, "trainer.epochs=5", "architecture.width=4") for args in commands]
        for process, args in zip(processes, commands):
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0 and "Traceback" not in err, (args, err)
        runs = all_runs(cwd)
        assert len(runs) == 9 and {r.info.status for r in runs} == {"FINISHED"}
        assert not list((cwd / "outputs").glob("*.db-journal"))


def test_sigterm_closes_a_single_run_as_killed(tmp_path):
    process = start_cli(tmp_path, "trainer.epochs=1000000", "architecture.width=4", "trainer.log_every=1000")
    wait_for(lambda: (tmp_path / "outputs" / "mlflow.db").exists() and len(all_runs(tmp_path)) == 1, 120,
             "the run to start")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert err.splitlines()[-1] == "backprop-lab: interrupted (SIGTERM); the run is closed as killed", err
    (run,) = all_runs(tmp_path)
    assert run.info.status == "KILLED" and run.data.tags["status"] == "killed"


SWEEP = ["-m", "tracking.report=never", "architecture.depth=1,2,3,4,5,6", "architecture.width=4", "trainer.epochs=1500",
         "trainer.log_every=100"]


def test_a_sweep_killed_with_sigkill_resumes_without_duplicates(tmp_path):
    process = start_cli(tmp_path, *SWEEP)  # 6 jobs: killed once two have finished and a third runs

    def two_finished_and_one_running():
        if not (tmp_path / "outputs" / "mlflow.db").exists():
            return False
        statuses = [r.info.status for r in all_runs(tmp_path)]
        return statuses.count("FINISHED") >= 2 and "RUNNING" in statuses

    wait_for(two_finished_and_one_running, 240, "two jobs to finish and a third to run")
    process.kill()
    process.communicate(timeout=60)
    before = all_runs(tmp_path)
    assert any(r.info.status == "RUNNING" for r in before), "no job was killed midway"

    done = run_cli(tmp_path, *SWEEP, "resume=true")
    assert done.returncode == 0, done.stderr
    runs = all_runs(tmp_path)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert len(finished) == 6 and len({r.data.tags["config_hash"] for r in finished}) == 6  # no duplicate
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert len(killed) == 1 and killed[0].data.tags["status"] == "killed"  # the orphan, closed
    assert not [r for r in runs if r.info.status == "RUNNING"]
    reused = sum(r.info.status == "FINISHED" for r in before)
    assert f"({6 - reused} finished, {reused} skipped)" in done.stdout
    assert len({r.data.tags["sweep_id"] for r in finished}) == 1  # the reused runs joined the new sweep
    parents = {r.data.tags["sweep_id"]: r for r in all_runs(tmp_path, kind="sweep")}
    assert parents[finished[0].data.tags["sweep_id"]].info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in finished} == {
        parents[finished[0].data.tags["sweep_id"]].info.run_id}
    assert killed[0].data.tags["sweep_id"] in parents  # the killed sweep's parent, closed as killed too
    assert parents[killed[0].data.tags["sweep_id"]].info.status == "KILLED"

    again = run_cli(tmp_path, *SWEEP, "resume=true")
    assert again.returncode == 0 and "(6 skipped)" in again.stdout, again.stdout
    assert len(all_runs(tmp_path)) == len(runs)  # trained nothing


def test_a_job_that_fails_at_run_time_is_recorded_and_the_sweep_goes_on(monkeypatch, tmp_path):
    import runner.cli

    real_fit = runner.run.train.fit

    def fit_that_fails_for_depth_2(net, *args, **kwargs):
        if net.n_layers == 3:
            raise RuntimeError("injected failure")
        return real_fit(net, *args, **kwargs)

    monkeypatch.setattr(runner.run.train, "fit", fit_that_fails_for_depth_2)
    code, stdout, stderr = run_in_process(monkeypatch, tmp_path, "-m", "tracking.report=never", "architecture.depth=1,2,3", "trainer.epochs=5",
                                          "architecture.width=4")
    assert code == 1 and "1 of 3 jobs failed" in stderr
    assert "(1 failed, 2 finished)" in stdout and "failed: #1 depth=2" in stdout and "injected failure" in stdout
    runs = {r.info.run_name: r for r in all_runs(tmp_path)}
    (parent,) = all_runs(tmp_path, kind="sweep")
    assert parent.info.status == "FAILED" and parent.data.metrics["sweep/failed"] == 1
    assert runs["depth=2"].info.status == "FAILED"
    assert "injected failure" in runs["depth=2"].data.tags["error"]
    assert {runs[n].info.status for n in ("depth=1", "depth=3")} == {"FINISHED"}


def test_a_tracking_none_sweep_prints_its_summary(tmp_path):
    done = run_cli(tmp_path, "-m", "optimizer.lr=0.01,1000", "activation=relu", "loss=mse", "trainer.epochs=20",
                   "tracking=none")
    assert done.returncode == 0, done.stderr
    assert "2 jobs in " in done.stdout and "(1 diverged, 1 finished)" in done.stdout
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


def test_run_notes_say_what_the_command_line_changed_from_the_described_experiment(monkeypatch, tmp_path):
    """A preset's description is the note of its experiment and of its runs; what a command line changes
    beyond the preset's own sweep is listed below it; the default config's description (a sigmoid net)
    is never an experiment's note, nor a ReLU run's without its change."""
    code, _, err = run_in_process(monkeypatch, tmp_path, "-m", "experiment=vanishing_depth", "architecture.depth=2,3",
                                  "activation=tanh", "init=normal", "trainer.epochs=2", "tracking.report=never")
    assert code in (0, None), err
    code, _, err = run_in_process(monkeypatch, tmp_path, "activation=relu", "trainer.epochs=2")
    assert code in (0, None), err
    client = MlflowClient(store_uri(tmp_path))
    preset = "Vanishing gradients - depth 2-16 x sigmoid/tanh/relu x normal(0.1)/glorot/he"
    note = "mlflow.note.content"
    assert client.get_experiment_by_name("vanishing_depth").tags[note] == preset
    assert note not in client.get_experiment_by_name("default").tags
    changes = "\n\n*Changed from what this describes:* "
    jobs = {r.info.run_name: r.data.tags[note] for r in all_runs(tmp_path)}
    assert jobs.pop("depth=2") == preset + changes + "trainer.epochs=2"  # tanh, normal: the preset sweeps them
    assert jobs.pop("depth=3") == preset + changes + "architecture.depth=3, trainer.epochs=2"
    (single,) = jobs.values()
    assert single.startswith("A 5-hidden-layer sigmoid net") and single.endswith(changes + "activation=relu, trainer.epochs=2")
    (parent,) = all_runs(tmp_path, "sweep")
    assert parent.data.tags[note] == preset + changes + "architecture.depth=2,3, trainer.epochs=2"


def test_a_glob_sweeps_over_the_options_it_matches(monkeypatch, tmp_path):
    """glob() expands through the config loader, in the checks as in Hydra's sweeper."""
    code, out, err = run_in_process(monkeypatch, tmp_path, "-m", "tracking.report=never", "activation=glob([rel*,tanh])", "trainer.epochs=2",
                                    "tracking=none", "hydra.sweep.dir=sweep")
    assert code == 0, err
    assert "sweep " in out and ": 2 job(s) checked" in out
    jobs = [OmegaConf.load(p) for p in sorted((tmp_path / "sweep").glob("*/.hydra/config.yaml"))]
    assert sorted(job.activation.name for job in jobs) == ["relu", "tanh"]


def test_a_sweeps_jobs_leave_their_own_figures_to_be_drawn_on_demand(monkeypatch, tmp_path):
    """tracking.run_figures=auto: a single run draws plots/*.png, a sweep's job does not (0.6 s of
    matplotlib against ~1 s of training); the report draws and logs them when asked, once."""
    code, out, err = run_in_process(monkeypatch, tmp_path, "-m", "tracking.report=never", "architecture.depth=1,2", "trainer.epochs=10",
                                    "tracking.experiment=figs")
    assert code == 0, err
    assert f"{sys.executable} -m runner.report figs --run-figures --uri {store_uri(tmp_path)}" in out
    code, _, err = run_in_process(monkeypatch, tmp_path, "-m", "tracking.report=never", "architecture.depth=3", "trainer.epochs=10",
                                  "tracking.experiment=figs_always", "tracking.run_figures=always")
    assert code == 0, err
    client = MlflowClient(store_uri(tmp_path))

    def runs(experiment):
        return client.search_runs([client.get_experiment_by_name(experiment).experiment_id], "tags.kind = 'job'")

    def plots(run):
        return {a.path for a in client.list_artifacts(run.info.run_id, "plots")}

    own = {"plots/loss.png", "plots/grad_norms.png", "plots/grad_profile.png"}
    assert [plots(run) for run in runs("figs")] == [set(), set()]
    assert [plots(run) for run in runs("figs_always")] == [own]
    report = subprocess.run([sys.executable, "-m", "runner.report", "figs", "--run-figures", "--no-mlflow"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    assert "drew the own figures of 2 of 2 runs" in report.stdout
    for run in runs("figs"):
        assert plots(run) == own
        images = client.list_artifacts(run.info.run_id, "images")
        assert {a.path.split("/")[1].split("+step+")[0] for a in images} == {"loss", "grad_norms", "grad_profile"}
        assert all("+step+10+" in a.path for a in images)  # the image grid shows them at the closing step
    from runner.report.load import load_runs
    from runner.report.to_mlflow import log_missing_run_figures

    assert log_missing_run_figures(client, load_runs(client, "figs")) == (0, 2)  # drawn once: a run that has them is skipped
    again = subprocess.run([sys.executable, "-m", "runner.report", "figs", "--run-figures", "--no-mlflow"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "report: drew the own figures of 0 of 2 runs; 2 had theirs already" in again.stdout, again.stdout


def test_a_tracking_none_sweeps_figures_are_drawn_by_runner_plots(monkeypatch, tmp_path):
    code, out, err = run_in_process(monkeypatch, tmp_path, "-m", "tracking.report=never", "architecture.depth=1,2", "trainer.epochs=5",
                                    "tracking=none", "hydra.sweep.dir=sweep")
    assert code == 0, err
    assert f"Each run's own figures (left out of a sweep's jobs): {sys.executable} -m runner.figures sweep" in out
    jobs = sorted((tmp_path / "sweep").glob("[0-9]*"))
    assert len(jobs) == 2 and all((job / "history.csv").exists() and not (job / "plots").exists() for job in jobs)
    drawn = subprocess.run([sys.executable, "-m", "runner.figures", "sweep"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=300)
    assert drawn.returncode == 0, drawn.stderr
    assert "drew the figures of 2 of 2 runs" in drawn.stdout
    for job in jobs:
        assert sorted(p.name for p in (job / "plots").iterdir()) == ["grad_norms.png", "grad_profile.png", "loss.png"]
    again = subprocess.run([sys.executable, "-m", "runner.figures", "sweep"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=300)
    assert again.stdout == "plots: drew the figures of 0 of 2 runs; 2 had theirs already\n", again.stdout



@pytest.mark.parametrize("folder,message", [
    ("nope", "nope: no such directory"), ("empty", "empty: no run directory below (none holds a history.csv)"),
    ("tracked", "tracked: no run directory below (its runs' histories are in MLflow: python -m runner.report "
                "EXPERIMENT --run-figures draws their figures)")])
def test_runner_plots_refuses_a_folder_without_runs_in_one_line(monkeypatch, capsys, tmp_path, folder, message):
    from runner.figures.cli import main

    (tmp_path / "empty").mkdir()
    (tmp_path / "tracked" / "0").mkdir(parents=True)  # a tracked sweep's job: MLflow holds its history.csv
    (tmp_path / "tracked" / "0" / "job.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([folder])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"python -m runner.figures: error: {message}\n"


PEAK_RSS = """
import resource, sys
sys.argv = ["backprop-lab", "tracking=none", "trainer.log_every=1", "architecture.depth=1", "architecture.width=2",
            "dataset.n_samples=8", "trainer.epochs=" + sys.argv[1]]
import runner.cli
runner.cli.main()
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_kb(cwd: Path, epochs: int) -> int:
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, str(epochs)], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split("PEAK_KB")[1])


def test_memory_does_not_grow_with_the_history(tmp_path):
    short, long = peak_rss_kb(tmp_path, 200), peak_rss_kb(tmp_path, 25_000)
    # a list-of-dicts history costs ~1.8 KB per logged step here: 45 MB for 25 000 steps
    assert long - short < 20_000, (short, long)
    rows = sorted(len(pd.read_csv(path)) for path in (tmp_path / "outputs" / "runs").glob("*/*/history.csv"))
    assert rows == [201, 25_001]  # every update and the closing record, streamed to disk


def test_basic_and_joblib_launchers_give_identical_histories(tmp_path):
    common = ["dataset=digits", "loss=cross_entropy", "activation=tanh", "architecture.width=256",
              "architecture.depth=2", "trainer.epochs=2", "trainer.batch_size=256", "trainer.log_every=1",
              "trainer.threads=2", "tracking=none", "seed=1,2"]
    histories = {}
    for launcher in ("basic", "joblib"):
        cwd = tmp_path / launcher
        cwd.mkdir()
        extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
        done = run_cli(cwd, "-m", "tracking.report=never", *common, *extra)
        assert done.returncode == 0, done.stderr
        histories[launcher] = {p.parent.name: p.read_bytes() for p in (cwd / "outputs").glob("multirun/*/*/*/history.csv")}
    assert len(histories["basic"]) == 2 and histories["basic"] == histories["joblib"]


def test_joblib_jobs_run_in_the_workers_started_while_the_sweep_was_checked(tmp_path):
    """The workers start (and import MLflow) during the checks; the launcher's own ``Parallel`` must then
    reuse them, not start others: each job's run names its process (tag ``pid``)."""
    done = run_cli(tmp_path, "-m", "tracking.report=never", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                   "architecture.depth=1,2,3,4", "architecture.width=4", "trainer.epochs=5",
                   "hydra.verbose=runner.sweep.joblib_workers")
    assert done.returncode == 0, done.stderr
    started = re.search(r"joblib's workers \[(\d+), (\d+)\] started ahead of the jobs", done.stdout + done.stderr)
    assert started, done.stdout + done.stderr
    runs = all_runs(tmp_path)
    assert len(runs) == 4 and {r.data.tags["pid"] for r in runs} <= set(started.groups())


def test_a_joblib_worker_scans_hydras_plugins_once_not_before_every_job(tmp_path):
    """Hydra's joblib launcher restores its singletons before each job, which scans every plugin again
    (executing each module under ``hydra_plugins``); a worker scans once.  A plugin module of the test's
    own writes its process's pid each time it is executed."""
    plugins, scans = tmp_path / "plugins" / "hydra_plugins", tmp_path / "scans.txt"
    plugins.mkdir(parents=True)
    (plugins / "scan_counter.py").write_text(
        "import os\nwith open(os.environ['SCAN_LOG'], 'a') as log:\n    log.write(f'{os.getpid()}\\n')\n")
    path = os.pathsep.join(filter(None, [str(tmp_path / "plugins"), os.environ.get("PYTHONPATH")]))
    done = run_cli(tmp_path, "-m", "tracking.report=never", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                   "architecture.depth=1,2,3,4,5,6", "architecture.width=4", "trainer.epochs=2",
                   env={"PYTHONPATH": path, "SCAN_LOG": str(scans)})
    assert done.returncode == 0, done.stderr
    workers = {r.data.tags["pid"] for r in all_runs(tmp_path)} - {""}
    scanned = scans.read_text().split()
    assert len(all_runs(tmp_path)) == 6 and workers
    assert {pid: scanned.count(pid) for pid in workers} == dict.fromkeys(workers, 1)


def test_joblibs_early_workers_open_the_parent_run_which_names_the_launching_process(tmp_path):
    """They import MLflow while the jobs are checked; the launching process, had it opened the parent run, would
    import it only after the checks, before the first job.  The run names the launching process (tag ``pid``): a
    later command must not close it as an orphan while the launching process writes its report."""
    process = start_cli(tmp_path, "-m", "tracking.report=never", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                        "architecture.depth=1,2", "architecture.width=4", "trainer.epochs=5",
                        "hydra.verbose=[runner.sweep.joblib_workers,runner.sweep.callback]")
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err
    workers = re.search(r"joblib's workers \[(\d+), (\d+)\] started ahead of the jobs", out + err).groups()
    for step in ("prepare_experiment", "open_parent"):
        assert re.search(rf"runner\.sweep\.parent_run\.{step} ran in joblib's worker ({'|'.join(workers)})\b", out + err)
    (parent,) = all_runs(tmp_path, kind="sweep")
    assert f"the sweep's parent run {parent.info.run_id} is open; MLflow imported by this process before its jobs: " \
           "False" in out + err
    assert parent.data.tags["pid"] == str(process.pid) and parent.info.status == "FINISHED"
    assert {r.data.tags["pid"] for r in all_runs(tmp_path)} <= set(workers)


def workers_of(launcher: int) -> list[int]:
    """The processes a sweep launched by ``launcher`` left (its workers carry its pid in their environment)."""
    left = []
    for other in psutil.process_iter():
        try:
            if other.environ().get(LAUNCHER_PID) == str(launcher):
                left.append(other.pid)
        except psutil.Error:
            pass
    return left


def test_a_refused_joblib_sweep_leaves_no_worker_behind(tmp_path):
    """The workers start while the jobs are checked: a job refused ends them with the command."""
    process = start_cli(tmp_path, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "tracking=none",
                        "architecture.depth=1,2,3,-4", "trainer.epochs=5")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 2 and err.count("\n") == 1 and "architecture.depth=-4" in err, err
    assert not workers_of(process.pid)
    assert not (tmp_path / "outputs").exists()  # nothing written


def test_ctrl_c_while_a_joblib_sweep_is_checked_is_one_line_and_leaves_no_worker(tmp_path):
    """Ctrl-C reaches the workers started during the checks too (the terminal signals the whole group):
    the command ends with its one line, no traceback of the thread that started them, and no worker left.
    (A worker still starting its interpreter prints Python's own traceback: loky's spawn resets the
    signal mask, and a started worker cannot be told before it runs.)"""
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         "architecture.width=4", "init=mean_field", "init.sigma_w2=range(0.5,4.5,0.01)", "architecture.depth=range(1,11)"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal starts it (not ignored,
    # as it is for a background job of a script, where the tests may run)
    time.sleep(2)  # Python and Hydra up, the workers importing MLflow, 4000 jobs being checked (about 5 s here)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "Exception in thread" not in err, err
    assert err.splitlines()[-1] == "backprop-lab: interrupted (SIGINT); the sweep stopped before its first job", err
    assert "job(s) checked" not in out  # it was stopped while checking
    assert not workers_of(process.pid)


def ignores_ctrl_c(pid: int) -> bool:
    """Whether process ``pid`` ignores SIGINT (its ``SigIgn`` mask)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = int(re.search(r"^SigIgn:\s*([0-9a-f]+)", status, re.M).group(1), 16)
    return bool(mask >> (signal.SIGINT - 1) & 1)


def test_a_launcher_killed_with_sigkill_while_the_sweep_is_checked_leaves_no_worker(tmp_path):
    """joblib's workers start while the sweep is checked; the launching process killed with -9 then had left
    them idle (joblib lets an idle worker go after 300 s) with MLflow loaded: they stop with it, as a job's
    worker does."""
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         "architecture.width=4", "init=mean_field", "init.sigma_w2=range(0.5,4.5,0.01)", "architecture.depth=range(1,11)"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,  # 4000 jobs: seconds of checks
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # (as a terminal starts it)

    def started() -> bool:  # both workers ignore Ctrl-C, which they do once they watch the launching process
        try:
            workers = [pid for pid in workers_of(process.pid) if "popen_loky" in " ".join(psutil.Process(pid).cmdline())]
        except psutil.Error:  # a process of the sweep just ended
            return False
        return len(workers) == 2 and all(ignores_ctrl_c(pid) for pid in workers)

    wait_for(started, 60, "the workers to start")
    process.kill()
    process.wait(timeout=60)
    assert not (tmp_path / "outputs" / "mlflow.db").exists()  # killed while it checked
    wait_for(lambda: not workers_of(process.pid), 30, "the workers to stop")
    # the lock its workers waited on for the checks (its name holds the pid) goes with the next sweep's start
    from runner.sweep.joblib_workers import _Checking

    left = list(Path(tempfile.gettempdir()).glob(f"{_Checking.PREFIX}{process.pid}-*"))
    assert left
    _Checking().end()
    assert not any(path.exists() for path in left)


def omegaconf_broken_by_a_ctrl_c() -> Exception:
    """What a Ctrl-C raised where OmegaConf restores a config's flags becomes, as a sweep's check saw it
    (``Crashed`` from ``AttributeError: 'NoneType' object has no attribute '_invalidate_flags_cache'``)."""
    from runner.config.errors import Crashed

    try:
        try:
            try:
                raise KeyboardInterrupt
            finally:
                None._invalidate_flags_cache()  # noqa: B018  (what the flags' restoring then did)
        except AttributeError:
            raise ValueError("full_key: hydra.overrides.task") from None  # OmegaConf's wrapping, cause hidden
    except ValueError as err:
        crashed = Crashed()
        crashed.__cause__ = err
        return crashed


def test_a_ctrl_c_that_breaks_what_it_lands_in_still_ends_the_command_as_interrupted(monkeypatch, capsys):
    """A Ctrl-C landing inside OmegaConf as a sweep's jobs were checked ended the command with exit 1 and
    OmegaConf's traceback (seen once in CI): it ends as any Ctrl-C does."""
    import runner.cli
    from runner.processes import interruption_in

    crashed = omegaconf_broken_by_a_ctrl_c()
    assert isinstance(interruption_in(crashed), KeyboardInterrupt)
    assert interruption_in(ValueError("no Ctrl-C in this one")) is None

    def checks_interrupted():
        raise crashed

    monkeypatch.setattr(runner.cli, "_run_hydra", checks_interrupted)
    monkeypatch.setattr(sys, "argv", ["backprop-lab", "-m", "architecture.depth=1,2"])
    with pytest.raises(SystemExit) as exit_:
        runner.cli.main()
    assert exit_.value.code == 130
    assert capsys.readouterr().err == "backprop-lab: interrupted (SIGINT); the sweep stopped before its first job\n"


def test_the_first_worker_ready_takes_the_sweeps_first_calls_while_another_still_imports(monkeypatch, tmp_path):
    """``JoblibWorkers.ready`` waits for one worker, not for all: the parent run is opened and the first job
    starts on the first worker ready, while the others finish importing MLflow (the slowest took ~0.5 s more
    on two cores).  Here the first worker to import holds its import until the test lets it go."""
    from runner.sweep.joblib_workers import JoblibWorkers, _executor

    (tmp_path / "held_for_one.py").write_text(
        "import os, time\ntry:\n    os.close(os.open(os.environ['HELD'], os.O_CREAT | os.O_EXCL))\n"
        "except FileExistsError:\n    pass\nelse:\n    while not os.path.exists(os.environ['GO']):\n"
        "        time.sleep(0.01)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HELD", str(tmp_path / "held"))
    monkeypatch.setenv("GO", str(tmp_path / "go"))
    _executor().shutdown(wait=True, kill_workers=True)  # workers of this test's own (its path, its environment)
    workers = JoblibWorkers({"n_jobs": 2, "backend": "loky"}, ("held_for_one",), tmp_path)
    try:
        workers.checked()
        workers.ready()
        (ready,) = workers.pids
        assert workers.started and workers.thread.is_alive()  # the other worker still imports
        assert workers.call("os", "getpid") == ready
    finally:
        (tmp_path / "go").touch()
        workers.release()
    assert len(set(workers.pids)) == 2 and not workers.thread.is_alive()


def test_while_the_sweep_is_checked_only_one_worker_fewer_than_the_cores_imports(monkeypatch, tmp_path):
    """The launching process checks the sweep while joblib's workers import: all importing at once, they
    took its core, and the first of them was ready later.  Of 3 workers on 2 cores, one imports at once,
    two once the checks end (``checked``).  A module of the test's own stamps each import with its time;
    the first importer holds its import until the other two workers wait on the checks' lock (else, done
    at once, it could take their calls as well)."""
    from runner.sweep import joblib_workers
    from runner.sweep.joblib_workers import JoblibWorkers, _executor

    (tmp_path / "stamped.py").write_text(
        "import os, time\nwith open(os.environ['STAMPS'], 'a') as f:\n    f.write(f'{time.time()}\\n')\n"
        "try:\n    os.close(os.open(os.environ['HELD'], os.O_CREAT | os.O_EXCL))\nexcept FileExistsError:\n    pass\n"
        "else:\n    while not os.path.exists(os.environ['GO']):\n        time.sleep(0.01)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("STAMPS", "HELD", "GO"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setattr(joblib_workers, "_cores", lambda: 2)
    _executor().shutdown(wait=True, kill_workers=True)  # workers of this test's own (its path, its environment)
    workers = JoblibWorkers({"n_jobs": 3, "backend": "loky"}, ("stamped",), tmp_path)

    def waiting_on_the_lock() -> int:
        waiting = 0
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                waiting += any(f.path == workers.checking.path for f in child.open_files())
        return waiting

    try:
        wait_for(lambda: waiting_on_the_lock() == 2, 60, "two workers to wait on the checks' lock")
        (tmp_path / "go").touch()
        workers.ready()
        time.sleep(1.0)
        checks_ended = time.time()
        workers.checked()
        assert not Path(workers.checking.path).exists()
    finally:
        (tmp_path / "go").touch()
        workers.release()
    stamps = sorted(float(line) for line in (tmp_path / "stamps").read_text().split())
    assert len(set(workers.pids)) == 3 and len(stamps) == 3
    assert stamps[0] < checks_ended <= stamps[1]


def test_a_ctrl_c_in_a_worker_outside_its_jobs_is_left_to_the_launching_process(monkeypatch, tmp_path):
    """A joblib worker imports Hydra, NumPy and our modules (MLflow too) before its first job: a Ctrl-C
    meanwhile printed an import's traceback from each worker, and one between two jobs the pool loop's.  It
    is ignored from the imports on, and within a job the worker's own handler is back (a job's Ctrl-C
    raises KeyboardInterrupt: its run is closed as killed)."""
    from runner import processes
    from runner.sweep.joblib_workers import _imported

    (tmp_path / "interrupted_import.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGINT)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr("atexit.register", lambda function: None)  # this process is pytest's, not a worker
    original = signal.getsignal(signal.SIGINT)
    try:
        for handler in (signal.default_int_handler, signal.SIG_IGN):  # a terminal's command; a script's background job
            monkeypatch.setattr(processes, "_job_sigint", None)  # a new worker
            signal.signal(signal.SIGINT, handler)
            sys.modules.pop("interrupted_import", None)
            assert _imported(("interrupted_import",), None) == os.getpid()
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # between jobs
            with processes.ctrl_c_in_the_job():
                assert signal.getsignal(signal.SIGINT) is handler
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, original)


def test_a_ctrl_c_inside_a_store_call_is_acted_on_when_the_call_returns(tmp_path, monkeypatch):
    """Every call of the client ``open_store`` gives is made whole: a Ctrl-C that lands inside one raises
    KeyboardInterrupt once it has returned.  Landing inside a read, it had left the read's lock held, and
    closing the parent run as killed waited 40 s for it and failed (1 Ctrl-C in 8 during a sweep's report)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    client = open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run("0").info.run_id
    original, returned = SqlAlchemyStore.get_run, []

    def interrupted_read(store, run):  # the Ctrl-C lands as the read starts
        os.kill(os.getpid(), signal.SIGINT)
        returned.append(original(store, run))
        return returned[-1]

    monkeypatch.setattr(SqlAlchemyStore, "get_run", interrupted_read)
    # as in a terminal's command (a pytest-xdist worker ignores SIGINT)
    original_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            client.get_run(run_id)
    finally:
        signal.signal(signal.SIGINT, original_handler)
    assert len(returned) == 1  # the read was done whole, then interrupted
    monkeypatch.undo()
    started = time.perf_counter()
    client.set_terminated(run_id, "KILLED")
    assert time.perf_counter() - started < 15  # not MLflow's 20 s wait for a lock
    assert MlflowClient(client.tracking_uri).get_run(run_id).info.status == "KILLED"


def test_ctrl_c_during_the_sweeps_report_closes_its_parent_run(tmp_path):
    """The jobs are done and the report is being drawn: Ctrl-C closes the parent run as killed (it was left
    RUNNING, and the command said a run was closed)."""
    process = subprocess.Popen([sys.executable, "-m", "runner", "-m", "architecture.depth=2,4", "activation=sigmoid,tanh",
                                "trainer.epochs=50", "architecture.width=8"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal starts it
    for line in process.stdout:
        if " jobs in " in line:  # the closing summary: the report comes next (about a second here)
            time.sleep(0.3)
            os.killpg(process.pid, signal.SIGINT)
            break
    out, err = process.communicate(timeout=120)
    (parent,) = all_runs(tmp_path, kind="sweep")
    assert parent.info.status != "RUNNING", (process.returncode, err)
    if process.returncode == 130:  # it landed in the report (not after the command's work)
        assert parent.info.status == "KILLED" and "the sweep's parent run" in err.splitlines()[-1], err
    assert {r.info.status for r in all_runs(tmp_path)} == {"FINISHED"}


def test_the_callback_ships_to_workers_without_its_sweep():
    """A parallel launcher pickles Hydra's callbacks for each job: the sweep being launched (its parent
    run, its workers) stays in the launching process."""
    callback = ChecksAndSweep()
    callback.sweep = threading.Lock()  # as a sweep holding a thread would be: unpicklable
    shipped = pickle.loads(pickle.dumps(callback))
    assert shipped.sweep is None and callback.sweep is not None


def test_killing_a_parallel_sweep_stops_its_workers_and_closes_their_runs(tmp_path):
    process = start_cli(tmp_path, "-m", "tracking.report=never", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "architecture.depth=1,2",
                        "architecture.width=4", "trainer.epochs=1000000", "trainer.log_every=1000",
                        output=subprocess.DEVNULL)  # the workers would hold a pipe open

    def both_running():
        db = tmp_path / "outputs" / "mlflow.db"
        return db.exists() and [r.info.status for r in all_runs(tmp_path)] == ["RUNNING", "RUNNING"]

    wait_for(both_running, 240, "both jobs to run")
    listing = subprocess.run(["ps", "-o", "pid=", "--ppid", str(process.pid)], capture_output=True, text=True).stdout
    workers = [int(pid) for pid in listing.split()]
    assert workers
    process.kill()
    process.wait(timeout=60)

    def gone(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return open(f"/proc/{pid}/stat").read().split()[2] == "Z"

    wait_for(lambda: all(gone(pid) for pid in workers), 60, "the workers to stop")
    runs = all_runs(tmp_path)
    assert {(r.info.status, r.data.tags["status"]) for r in runs} == {("KILLED", "killed")}


@pytest.mark.parametrize("signum,to_group", [(signal.SIGINT, True), (signal.SIGTERM, False)], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_parallel_sweep_closes_its_runs_and_its_parent_before_it_exits(tmp_path, signum, to_group):
    """Ctrl-C (SIGINT to the whole process group) or SIGTERM to the launching process: joblib kills its
    workers, and before the command exits every run they left RUNNING and the sweep's parent run are
    closed as killed, the parent with the sweep's counts (not at the next command)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with open(tmp_path / "stderr.txt", "w") as stderr:  # a file: the workers would hold a pipe open
        process = subprocess.Popen(
            [sys.executable, "-m", "runner", "-m", "tracking.report=never", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
             "architecture.depth=1,2,3", "architecture.width=4", "trainer.epochs=1000000", "trainer.log_every=1000"],
            cwd=tmp_path, env=environment, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal starts it
    wait_for(lambda: (tmp_path / "outputs" / "mlflow.db").exists()
             and [r.info.status for r in all_runs(tmp_path)] == ["RUNNING", "RUNNING"], 240, "both jobs to run")
    (os.killpg if to_group else os.kill)(process.pid, signum)
    assert process.wait(timeout=60) == 128 + signum
    time.sleep(1)  # Python's resource tracker, a process of its own, would report joblib's semaphores now
    (line,) = (tmp_path / "stderr.txt").read_text().strip().splitlines()  # one line: ours
    assert line.startswith(f"backprop-lab: interrupted ({signal.Signals(signum).name}); the sweep's parent run ")
    assert {(r.info.status, r.data.tags["status"]) for r in all_runs(tmp_path)} == {("KILLED", "killed")}
    (parent,) = all_runs(tmp_path, kind="sweep")
    assert (parent.info.status, parent.data.tags["status"]) == ("KILLED", "killed")
    assert parent.data.metrics["sweep/jobs"] == 3 and parent.data.metrics["sweep/killed"] == 2


def test_a_ctrl_c_once_the_parent_run_exists_closes_it_as_killed(tmp_path):
    """Ctrl-C as soon as the sweep's parent run is in the store: while joblib's workers may still be importing
    MLflow (seconds after the parent run is made; there it had been left RUNNING until the next command), or
    later, the parent is closed as killed before the command exits, and its one line says so."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "runner", "-m", "tracking.report=never", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
             "architecture.depth=1,2", "architecture.width=4", "trainer.epochs=1000000"],
            cwd=tmp_path, env=environment, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(lambda: (tmp_path / "outputs" / "mlflow.db").exists() and all_runs(tmp_path, kind="sweep"), 240,
             "the parent run")
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=60) == 130
    time.sleep(1)  # Python's resource tracker would report joblib's semaphores now
    (line,) = (tmp_path / "stderr.txt").read_text().strip().splitlines()
    assert line.startswith("backprop-lab: interrupted (SIGINT); the sweep's parent run "), line
    (parent,) = all_runs(tmp_path, kind="sweep")
    assert (parent.info.status, parent.data.tags["status"]) == ("KILLED", "killed")
    assert all(r.info.status == "KILLED" for r in all_runs(tmp_path))


class _EveryKeyAGroup:
    """A config repository in which every override chooses an option: each job is composed whole."""

    @staticmethod
    def group_exists(key):
        return True


class CountingLoader:
    """Stands in for Hydra's config loader: counts compositions (each job's own: see _EveryKeyAGroup;
    composing once per choice is proven against Hydra's loader in test_composition.py)."""

    repository = _EveryKeyAGroup()

    def __init__(self):
        self.calls = 0

    def load_sweep_config(self, master_config, sweep_overrides):
        self.calls += 1
        return OmegaConf.create({"overrides": list(sweep_overrides), "hydra": {
            "overrides": {"task": list(sweep_overrides)}, "job": {"num": 0, "override_dirname": "", "config": {
                "override_dirname": {"kv_sep": "=", "item_sep": ",", "exclude_keys": []}}}}})


def test_the_launching_process_composes_each_job_once_and_hands_it_to_the_workers(tmp_path):
    from runner.sweep.composed_once import ComposedAhead, ComposedOnce

    def master(name):
        return OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / name)}}})

    loader, sweep = CountingLoader(), master("sweep")
    fresh = pickle.loads(pickle.dumps(loader))  # nothing composed yet: a worker gets Hydra's own method
    assert "load_sweep_config" not in fresh.__dict__
    remembered = ComposedOnce.install(loader)
    assert ComposedOnce.install(loader) is remembered  # a second sweep in the process: still one layer
    first = loader.load_sweep_config(sweep, ["x=1"])
    first.hydra.job.num = 7  # what a launcher does to the config it runs
    again = loader.load_sweep_config(sweep, ["x=1"])
    assert loader.calls == 1 and again.hydra.job.num == 0 and again.overrides == ["x=1"]  # a fresh copy each time
    assert loader.load_sweep_config(sweep, ["x=2"]).overrides == ["x=2"] and loader.calls == 2
    loader.load_sweep_config(master("another"), ["x=1"])
    assert loader.calls == 3  # another sweep's config: composed afresh, never another sweep's copy
    loader.load_sweep_config(sweep, ["x=1"])
    assert loader.calls == 4

    shipped = pickle.dumps(loader)  # as joblib, Ray or submitit ship it: the compositions go through a file
    (shared,) = (tmp_path / "sweep").glob(".compositions-*.pkl")
    assert pickle.dumps(loader) and remembered.shared == str(shared)  # written once
    worker = pickle.loads(shipped)
    assert isinstance(worker.__dict__["load_sweep_config"], ComposedAhead)
    first = worker.load_sweep_config(sweep, ["x=1"])
    first.hydra.job.num = 3
    again = worker.load_sweep_config(sweep, ["x=1"])
    assert worker.calls == 4 and again.overrides == ["x=1"] and again.hydra.job.num == 0  # read, not composed
    assert worker.load_sweep_config(sweep, ["x=9"]).overrides == ["x=9"] and worker.calls == 5  # not among them
    remembered.discard()
    assert not shared.exists()
    elsewhere = pickle.loads(shipped)  # a worker on a machine without the file composes as Hydra does
    ComposedAhead._read.pop(str(shared))
    assert elsewhere.load_sweep_config(sweep, ["x=1"]).overrides == ["x=1"] and elsewhere.calls == 5


def test_a_worker_reads_only_the_compositions_file_its_sweep_wrote_and_stale_ones_are_removed(tmp_path):
    from runner.sweep.composed_once import ComposedAhead, ComposedOnce

    sweep = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    stale = tmp_path / ".compositions-999999999-abc.pkl"  # a sweep killed with -9: its process is gone
    stale.write_bytes(b"left over")
    alive = tmp_path / f".compositions-{os.getpid()}-abc.pkl"  # a sweep still running
    alive.write_bytes(b"in use")
    loader = CountingLoader()
    ComposedOnce.install(loader)(sweep, ["x=1"])
    shipped = pickle.dumps(loader)
    assert not stale.exists() and alive.exists()
    (shared,) = set(tmp_path.glob(".compositions-*.pkl")) - {alive}
    shared.write_bytes(pickle.dumps({("x=1",): pickle.dumps(CountingLoader().load_sweep_config(sweep, ["forged"]))}))
    worker = pickle.loads(shipped)
    assert isinstance(worker.__dict__["load_sweep_config"], ComposedAhead)
    assert worker.load_sweep_config(sweep, ["x=1"]).overrides == ["x=1"]  # composed: the file is not the one written
    assert worker.calls == 2


def described(repo: dict) -> str:
    """Every config of a ConfigStore's ``repo``, as text: where it is, its package and provider, its values."""
    def lines(folder, where):
        for name, item in folder.items():
            if isinstance(item, dict):
                yield from lines(item, f"{where}{name}/")
            else:
                yield f"{where}{name} {item.group} {item.package} {item.provider} {OmegaConf.to_yaml(item.node)!r}"
    return "\n".join(lines(repo, ""))


def test_joblibs_workers_get_hydras_config_store_once_through_a_file_not_with_every_job(tmp_path):
    """Hydra's joblib launcher pickles its singletons' state into every job (with loky's pickler): with the
    store's handoff installed, the ConfigStore in it is a reference to a file the sweep writes once, which a
    worker (a fresh interpreter here) reads into its own store: the launching process's configs, every one.
    Copies Hydra makes as it composes are copies still, and write nothing."""
    from hydra.core.config_store import ConfigStore
    from hydra.core.singleton import Singleton
    from joblib.externals.loky.backend.reduction import dumps
    from runner.sweep.config_store_once import ConfigStoreOnce

    import runner.cli  # noqa: F401  (our schemas in the store, as in a sweep)

    ConfigStore.instance().store(name="only_in_the_launching_process", node={"x": 1})
    whole = bytes(dumps(Singleton.get_state()))
    assert b"only_in_the_launching_process" in whole
    handoff = ConfigStoreOnce(tmp_path).install()
    try:
        copied = copy.deepcopy(ConfigStore.instance())
        assert copied is not ConfigStore.instance() and not list(tmp_path.iterdir())
        launched = Singleton.get_state()  # as the launcher takes it, once per launch: a copy of each singleton
        state = bytes(dumps(launched))
        written = set(tmp_path.glob(".config-store-*.pkl"))
        assert dumps(launched) == state and set(tmp_path.glob(".config-store-*.pkl")) == written
        # the next launch's copies: the same configs, so the same file (a search launches hundreds of times)
        assert bytes(dumps(Singleton.get_state())) == state and len(written) == 1
        assert b"only_in_the_launching_process" not in state and len(state) < len(whole) - 40_000
        worker = subprocess.run(
            [sys.executable, "-c", "import pickle, sys\nfrom hydra.core.config_store import ConfigStore\n"
             "from test_sweeps import described\n"
             "state = pickle.loads(sys.stdin.buffer.read())\n"
             "stores = {s for cls, s in state['instances'].items() if cls is ConfigStore}\n"
             "assert stores == {ConfigStore.instance()}\n"
             "print(described(ConfigStore.instance().repo))"],
            input=state, capture_output=True, cwd=Path(__file__).parent)
        assert worker.returncode == 0, worker.stderr.decode()
        # its own store now holds every config of this process's
        assert worker.stdout.decode().strip() == described(ConfigStore.instance().repo)
        for path in written:  # not the files the sweep wrote: not read
            path.write_bytes(path.read_bytes() + b"forged")
        worker = subprocess.run([sys.executable, "-c", "import pickle, sys\n"
                                 "state = pickle.loads(sys.stdin.buffer.read())\n"
                                 "from hydra.core.config_store import ConfigStore\n"
                                 "print('only_in_the_launching_process.yaml' in ConfigStore.instance().repo)"],
                                input=state, capture_output=True)
        assert worker.stdout.split() == [b"False"] and b"cannot be read" in worker.stderr
    finally:
        handoff.discard()
        ConfigStore.instance().repo.pop("only_in_the_launching_process.yaml")
    assert not list(tmp_path.glob(".config-store-*.pkl"))
    assert b"_schema.yaml" in bytes(dumps(Singleton.get_state()))  # pickled whole again once the sweep is done


def test_an_interrupted_sweep_gets_the_report_of_what_finished(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "-m", "trainer.epochs=5,1000000", "architecture.width=4",
         "trainer.log_every=1000"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(lambda: (tmp_path / "outputs" / "mlflow.db").exists()
             and sorted(r.info.status for r in all_runs(tmp_path)) == ["FINISHED", "RUNNING"], 240, "job 1 to run")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    (parent,) = all_runs(tmp_path, kind="sweep")
    client = MlflowClient(store_uri(tmp_path))
    report = {f.path for f in client.list_artifacts(parent.info.run_id, "report")}
    assert "report/grad_profile.png" in report and parent.info.status == "KILLED"
    summary = pd.read_csv(client.download_artifacts(parent.info.run_id, "report/summary.csv", str(tmp_path)))
    assert len(summary) == 2  # both jobs' rows (the killed one keeps its row), one finished history drawn


@pytest.mark.parametrize("overrides, sweeper", [
    ([], "GridSweeper"), (["hydra/sweeper=basic"], "BasicSweeper"), (["experiment=optuna_deep_tanh"], "OptunaSweeper"),
    (["hydra/sweeper=optuna", "experiment=vanishing_depth"], "OptunaSweeper")])
def test_the_default_sweeper_is_the_grid_one_and_a_preset_or_the_command_line_choose_another(overrides, sweeper):
    from hydra import compose, initialize_config_dir

    from conftest import CONF

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        config = compose("config", overrides=overrides, return_hydra_config=True)
    assert config.hydra.sweeper._target_.rsplit(".", 1)[1] == sweeper


def test_the_grid_and_the_basic_sweeper_run_the_same_jobs(tmp_path):
    for sweeper in ("grid", "basic"):
        done = run_cli(tmp_path, "-m", f"hydra/sweeper={sweeper}", "architecture.depth=1,2", "activation=relu,tanh",
                       "trainer.epochs=2", "tracking=none", f"hydra.sweep.dir={sweeper}")
        assert done.returncode == 0, done.stderr
    histories = {sweeper: sorted(p.read_text() for p in (tmp_path / sweeper).glob("*/history.csv"))
                 for sweeper in ("grid", "basic")}
    assert len(histories["grid"]) == 4 and histories["grid"] == histories["basic"]


def test_a_parallel_launcher_gets_the_longest_jobs_first_and_the_basic_one_the_grid_s_order(tmp_path):
    """Workers take the next job as they free up: a grid launched in its own order ends on its last jobs,
    here its largest, run alone while the other worker idles.  joblib gets them longest first, numbered
    in that order; ``longest_first=false`` and the basic launcher (one job at a time) keep the grid's."""
    grid = ["architecture.depth=1,3,2", "architecture.width=4,16", "trainer.epochs=2", "tracking=none"]
    joblib = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]

    def launched(name: str, *extra: str) -> list[tuple[str, str]]:
        done = run_cli(tmp_path, "-m", *grid, *extra, f"hydra.sweep.dir={name}")
        assert done.returncode == 0, done.stderr
        jobs = [json.loads(p.read_text()) for p in (tmp_path / name).glob("*/job.json")]
        jobs.sort(key=lambda job: job["job_num"])
        assert [job["job_num"] for job in jobs] == list(range(6))
        return [tuple(o.split("=")[1] for o in job["overrides"][:2]) for job in jobs]

    in_grid_order = [("1", "4"), ("1", "16"), ("3", "4"), ("3", "16"), ("2", "4"), ("2", "16")]
    # the same data and updates for every job: the work is the parameter count of a 2-in, 1-out net of
    # depth d, width w: 3w + (d-1)(w^2 + w) + w + 1: w=16: 65, 337, 609 for d=1,2,3; w=4: 17, 37, 57
    longest_first = [("3", "16"), ("2", "16"), ("1", "16"), ("3", "4"), ("2", "4"), ("1", "4")]
    assert launched("joblib", *joblib) == longest_first
    assert launched("joblib_grid_order", *joblib, "hydra.sweeper.longest_first=false") == in_grid_order
    assert launched("basic") == in_grid_order
    # its report reads as the grid, not in the order the jobs ran: depth (named first) outermost, in numbers
    from runner.report.folder import report_of_folder

    table = pd.read_csv(report_of_folder(tmp_path / "joblib", quiet=True) / "summary.csv")
    assert list(table.columns[1:3]) == ["architecture.depth", "architecture.width"]
    assert list(zip(table["architecture.depth"], table["architecture.width"])) == \
        [(1, 4), (1, 16), (2, 4), (2, 16), (3, 4), (3, 16)]


def test_jobs_expected_to_take_as_long_keep_the_grid_s_order_and_a_job_not_checked_leaves_it_all():
    from runner.sweep import launch_order

    launch_order.checked({("a=1",): 5, ("a=2",): 9, ("a=3",): 5, ("a=4",): 9})
    assert launch_order.longest_first([["a=1"], ["a=2"], ["a=3"], ["a=4"]]) == [["a=2"], ["a=4"], ["a=1"], ["a=3"]]
    assert launch_order.longest_first([["a=1"], ["a=5"], ["a=2"]]) == [["a=1"], ["a=5"], ["a=2"]]
    launch_order.checked({})


def test_two_sweeps_into_one_folder_are_told_apart(tmp_path):
    """A fixed hydra.sweep.dir used twice: the sweep id had been derived from the folder, so the second sweep
    shared the first's, and counted its 3 jobs.json and its 3 runs as its own ("1 job in 3.0s (3 finished)")."""
    args = ["trainer.epochs=2", "tracking.report=never", "hydra.sweep.dir=sweep"]
    first = run_cli(tmp_path, "-m", "seed=1,2,3", *args)
    second = run_cli(tmp_path, "-m", "seed=4", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *args)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "3 jobs in" in first.stdout and "(3 finished)" in first.stdout
    assert "1 job in" in second.stdout and "(1 finished)" in second.stdout, second.stdout
    ids = [re.search(r"sweep (\w+): \d+ job\(s\) checked", done.stdout).group(1) for done in (first, second)]
    assert ids[0] != ids[1]
    parents = {p.data.tags["sweep_id"]: p for p in all_runs(tmp_path, kind="sweep")}
    assert sorted(parents) == sorted(ids)
    assert parents[ids[0]].data.metrics["sweep/finished"] == 3 and parents[ids[1]].data.metrics["sweep/finished"] == 1
    jobs = all_runs(tmp_path)
    assert sorted(r.data.tags["sweep_id"] == ids[1] for r in jobs) == [False, False, False, True]
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs if r.data.tags["sweep_id"] == ids[1]} == \
        {parents[ids[1]].info.run_id}

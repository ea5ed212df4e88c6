"""Beyond one machine, really run here (``make test-integration``, which installs what it needs):
Hydra's Ray launcher on a local Ray cluster started by the test, the submitit launcher's local
executor, and an ``mlflow server`` backed by a real PostgreSQL taking a 4-worker sweep and a 1000-job one.

Each launcher runs the same small sweep as the basic launcher into one tracking store, and every
run's ``history.csv`` must be byte-identical to the basic launcher's (the jobs set their BLAS threads).
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import assert_every_point_recorded, run_cli, thousand_job_grid
from servers import free_port, serve_mlflow

pytestmark = pytest.mark.integration

SWEEP = ["architecture.depth=1,3", "activation=tanh,relu", "trainer.epochs=20", "architecture.width=8"]
BIN = Path(sys.executable).parent


def histories(client: MlflowClient, experiment: str, folder: Path) -> dict[str, bytes]:
    """Every job run's ``history.csv``, by run name."""
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], "tags.kind = 'job'")
    out = {}
    for run in runs:
        assert run.data.tags["status"] == "finished", run.info.run_name
        target = folder / run.info.run_id
        target.mkdir(parents=True)
        out[run.info.run_name] = Path(client.download_artifacts(run.info.run_id, "history.csv", str(target))).read_bytes()
    return out


def sweep_like_basic(tmp_path: Path, *launcher: str) -> None:
    """The sweep with the basic launcher and with ``launcher`` into one store: identical histories."""
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    for name, args in (("basic", []), ("other", list(launcher))):
        done = run_cli(tmp_path, "-m", *SWEEP, *args, f"tracking.uri={store}", f"tracking.experiment={name}",
                       timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    client = MlflowClient(store)
    basic, other = (histories(client, name, tmp_path / name) for name in ("basic", "other"))
    assert len(basic) == 4 and basic == other


@pytest.fixture
def ray_cluster(tmp_path):
    """A local Ray head node on 127.0.0.1 (2 CPUs, no dashboard), stopped after the test."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    ray = str(BIN / "ray")
    started = subprocess.run([ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={free_port()}",
                              "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
                             capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)


def test_ray_launcher_on_a_local_cluster_gives_the_basic_launchers_results(tmp_path, ray_cluster):
    # address=auto finds the cluster started above; the launcher's default object_store_memory is
    # refused by ray.init when it joins an existing cluster, hence null
    sweep_like_basic(tmp_path, "hydra/launcher=ray", "hydra.launcher.ray.init.address=auto",
                     "+hydra.launcher.ray.init.object_store_memory=null")


def test_submitit_local_executor_gives_the_basic_launchers_results(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep_like_basic(tmp_path, "hydra/launcher=submitit_local")


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    if not found[-1]:
        pytest.skip(f"no PostgreSQL {name} (Debian: apt-get install postgresql)")
    return found[-1]


@pytest.fixture
def postgres():
    """A PostgreSQL server in a temp dir on 127.0.0.1 (as the postgres user when we are root), with an
    empty database ``mlflow``; yields its SQLAlchemy URL."""
    pytest.importorskip("psycopg2")
    folder = Path(tempfile.mkdtemp(prefix="backprop-lab-pg-"))  # pytest's tmp_path is closed to other users
    as_owner = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run(as_owner + [_postgres_bin("initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "mlflow"],
                   check=True, capture_output=True, timeout=120)
    pg_ctl = as_owner + [_postgres_bin("pg_ctl"), "-D", str(folder / "data")]
    subprocess.run(pg_ctl + ["-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "-l", str(folder / "log"),
                             "-w", "start"], check=True, capture_output=True, timeout=120)
    try:
        subprocess.run([_postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "mlflow"],
                       check=True, capture_output=True, timeout=60)
        yield f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(pg_ctl + ["-m", "fast", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_postgresql_backed_server_takes_a_four_worker_sweep_with_no_lost_point(tmp_path, postgres):
    with serve_mlflow(tmp_path / "server", postgres, workers=2) as url:
        done = run_cli(tmp_path, "-m", "architecture.depth=1,2,3,4", "activation=tanh,relu", "trainer.epochs=60",
                       "hydra/launcher=joblib", "hydra.launcher.n_jobs=4", "tracking.experiment=team",
                       env={"MLFLOW_TRACKING_URI": url}, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        client = MlflowClient(url)
        experiment = client.get_experiment_by_name("team").experiment_id
        runs = client.search_runs([experiment], "tags.kind = 'job'")
        assert len(runs) == 8
        (parent,) = client.search_runs([experiment], "tags.kind = 'sweep'")
        assert parent.data.metrics["sweep/finished"] == 8
        for run in runs:
            # every logged step of every metric arrived: 60 updates and the closing record
            for key in ("train/loss", "val/loss", "grad_norm/grad_norm_l01"):
                steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
                assert sorted(steps) == list(range(61)), (run.info.run_name, key)
            (tmp_path / run.info.run_id).mkdir()
            history = Path(client.download_artifacts(run.info.run_id, "history.csv", str(tmp_path / run.info.run_id)))
            assert len(history.read_text().splitlines()) == 62


def test_a_thousand_job_sweep_against_a_postgresql_backed_server_records_every_point(tmp_path, postgres):
    """The 1000-job grid of ``tests/test_scale.py``, fewer updates a job, 2 joblib workers against a
    2-worker server: every job finished, every step of its history in MLflow."""
    with serve_mlflow(tmp_path / "server", postgres, workers=2) as url:
        done = run_cli(tmp_path, "-m", *thousand_job_grid(epochs=10, log_every=5), "tracking.experiment=thousand",
                       env={"MLFLOW_TRACKING_URI": url}, timeout=3600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert_every_point_recorded(MlflowClient(url), "thousand", tmp_path / "histories", 1000,
                                    ("train/loss", "grad_norm/grad_norm_l01"))


def test_a_search_keeps_its_study_in_postgresql_beside_a_postgresql_backed_server(tmp_path, postgres):
    """Workers share the study through the database: a database of its own on the same server (Optuna and
    MLflow both keep an ``alembic_version`` table)."""
    import optuna

    host_port = postgres.split("@", 1)[1].split("/", 1)[0]
    subprocess.run([_postgres_bin("createdb"), "-h", "127.0.0.1", "-p", host_port.split(":")[1], "-U", "mlflow", "optuna"],
                   check=True, capture_output=True, timeout=60)
    storage = postgres.rsplit("/", 1)[0] + "/optuna"
    with serve_mlflow(tmp_path / "server", postgres, workers=2) as url:
        done = run_cli(tmp_path, "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=4", f"hydra.sweeper.storage={storage}",
                       "optimizer.lr=tag(log,interval(0.01,1))", "trainer.epochs=30", "hydra/launcher=joblib",
                       "hydra.launcher.n_jobs=2", "tracking.experiment=team", "tracking.report=never",
                       env={"MLFLOW_TRACKING_URI": url}, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        study = optuna.load_study(study_name="team", storage=storage)
        assert [(t.number, t.state.name) for t in study.trials] == [(n, "COMPLETE") for n in range(4)]
        client = MlflowClient(url)
        runs = client.search_runs([client.get_experiment_by_name("team").experiment_id], "tags.kind = 'job'")
        assert sorted(int(r.data.tags["optuna.trial"]) for r in runs) == [0, 1, 2, 3]
        assert {r.data.metrics["final/val_loss"] for r in runs} == {t.value for t in study.trials}
        assert not (tmp_path / "outputs" / "optuna.db").exists()

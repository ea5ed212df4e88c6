"""Parallel sweeps: N joblib workers writing to one fresh embedded sqlite store lose nothing."""

from mlflow.tracking import MlflowClient

from conftest import run_cli, store_uri

SWEEP = ["architecture.depth=1,2", "activation=tanh,relu", "trainer.epochs=40", "tracking.detail=full"]


def histories(cwd):
    client = MlflowClient(store_uri(cwd))
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.kind = 'job'")
    found = {}
    for run in runs:
        assert run.info.status == "FINISHED" and run.data.tags["status"] == "finished"
        found[run.info.run_name] = {
            key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
            for key in run.data.metrics
        }
    return found


def test_four_workers_on_a_fresh_store_record_what_a_serial_sweep_records(tmp_path):
    parallel, serial = tmp_path / "parallel", tmp_path / "serial"
    parallel.mkdir()
    serial.mkdir()
    done = run_cli(parallel, "-m", "tracking.report=never", "hydra/launcher=joblib", "hydra.launcher.n_jobs=4", *SWEEP)
    assert done.returncode == 0, done.stderr
    assert "n_jobs=4" in done.stdout + done.stderr
    done = run_cli(serial, "-m", "tracking.report=never", *SWEEP)
    assert done.returncode == 0, done.stderr

    got, expected = histories(parallel), histories(serial)
    assert len(got) == 4 and set(got) == set(expected)
    for name, metrics in expected.items():
        assert set(got[name]) == set(metrics), name
        for key, points in metrics.items():
            assert got[name][key] == points, (name, key)  # every point, bit for bit
    assert sum(len(p) for m in got.values() for p in m.values()) > 4 * 40 * 10


def test_blas_threads_are_chosen_by_the_net(monkeypatch):
    from runner.run import threads

    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    big = [784, 2048, 2048, 10]  # 2 x 256 x 2048 x 2048 = 2.1e9 flops in the largest product
    assert threads.blas_threads(None, [2, 32, 32, 1], 300, alone=True) == 1  # small: one thread
    assert threads.blas_threads(None, big, 256, alone=True) == 2
    assert threads.blas_threads(None, big, 256, alone=False) == 1  # beside other jobs of a sweep: one
    assert threads.blas_threads(3, [2, 32, 1], 8, alone=False) == 3  # trainer.threads decides


def test_a_job_trains_with_the_threads_it_chose_never_those_it_inherited(tmp_path, monkeypatch):
    """A process whose BLAS was given 2 threads (the default of OpenBLAS on this machine, or a user's
    setting) trains a small net with 1: the limit is set around the fit, whatever came before."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict
    from threadpoolctl import threadpool_info, threadpool_limits

    import runner.run.train
    from conftest import CONF

    monkeypatch.chdir(tmp_path)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["trainer.epochs=2", "tracking=none"], return_hydra_config=True)
    cfg.hydra.runtime.output_dir = str(tmp_path / "run")
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    seen = []
    real_fit = runner.run.train.fit

    def fit_that_looks(*args, **kwargs):
        seen.append({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(runner.run.train, "fit", fit_that_looks)
    with threadpool_limits(limits=2, user_api="blas"):
        runner.run.train.train(cfg)
        assert seen == [{1}]
        assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {2}  # restored

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


def test_blas_threads_are_chosen_by_the_net_and_never_inherited(monkeypatch):
    from runner.run import threads

    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    big = [784, 2048, 2048, 10]  # 2 x 256 x 2048 x 2048 = 2.1e9 flops in the largest product
    assert threads.blas_threads(None, [2, 32, 32, 1], 300, alone=True) == 1  # small: one thread
    assert threads.blas_threads(None, big, 256, alone=True) == 2
    assert threads.blas_threads(None, big, 256, alone=False) == 1  # beside other jobs of a sweep: one
    assert threads.blas_threads(3, [2, 32, 1], 8, alone=False) == 3  # trainer.threads decides

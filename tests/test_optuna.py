"""Bayesian search with Hydra's Optuna sweeper: trials return their objective; divergence is a bad value."""

import yaml
from mlflow.tracking import MlflowClient

from conftest import run_cli, store_uri


def test_optuna_trials_return_objectives_and_a_diverged_trial_is_a_bad_one(tmp_path):
    done = run_cli(tmp_path, "-m", "tracking.report=never", "experiment=optuna_deep_tanh", "hydra.sweeper.n_trials=4", "activation=relu",
                   "optimizer.lr=choice(0.01,50)", "init.std=choice(0.3)", "trainer.epochs=60")
    assert done.returncode == 0, done.stderr
    (results,) = (tmp_path / "outputs" / "multirun").glob("*/*/optimization_results.yaml")
    best = yaml.safe_load(results.read_text())
    assert best["best_params"] == {"optimizer.lr": 0.01, "init.std": 0.3}

    client = MlflowClient(store_uri(tmp_path))
    experiment = client.get_experiment_by_name("optuna_deep_tanh")
    runs = client.search_runs([experiment.experiment_id], "tags.kind = 'job'")
    assert len(runs) == 4 and len({r.data.tags["sweep_id"] for r in runs}) == 1
    by_lr = {}
    for run in runs:
        by_lr.setdefault(float(run.data.params["optimizer.lr"]), set()).add(run.data.tags["status"])
    assert by_lr == {50.0: {"diverged"}, 0.01: {"finished"}}  # TPE with seed 0 tries both
    finished = [r for r in runs if r.data.tags["status"] == "finished"]
    assert best["best_value"] == finished[0].data.metrics["final/val_loss"]


def test_a_sweepers_objective_is_inf_unless_the_run_finished_with_a_finite_loss():
    import math

    from runner.run.job import Outcome

    assert Outcome("finished", summary={"final/val_loss": 0.25}).objective == 0.25
    assert Outcome("skipped", summary={"final/val_loss": 0.5}).objective == 0.5  # a reused run's
    assert Outcome("finished", summary={"final/val_loss": math.nan}).objective == math.inf  # divergence_guard=false
    assert Outcome("diverged", summary={"final/val_loss": 0.1}).objective == math.inf
    assert Outcome("failed").objective == math.inf

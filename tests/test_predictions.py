"""Per run, the mean-field prediction beside the measurement, read back through MLflow's client."""

import math

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from backprop_core import theory
from conftest import run_cli, store_uri
from runner.tracking.schema import agrees, gradient_flow


def _only_run(tmp_path):
    client = MlflowClient(store_uri(tmp_path))
    (run,) = client.search_runs([client.get_experiment_by_name("default").experiment_id])
    return client, run


def test_a_run_records_prediction_beside_measurement(tmp_path):
    done = run_cli(tmp_path, "init=mean_field", "init.sigma_w2=1.5", "init.sigma_b2=0.05", "activation=tanh",
                   "architecture.depth=6", "architecture.width=32", "trainer.epochs=3", "trainer.jacobian_samples=5")
    assert done.returncode == 0, done.stderr
    client, run = _only_run(tmp_path)
    metrics, tags = run.data.metrics, run.data.tags
    q = theory.q_star("tanh", 1.5, 0.05)
    assert metrics["theory/q_star"] == pytest.approx(q, rel=1e-12)
    assert metrics["theory/chi1"] == pytest.approx(theory.chi1("tanh", 1.5, q), rel=1e-12)
    assert metrics["theory/xi_grad"] == pytest.approx(-1 / math.log(metrics["theory/chi1"]), rel=1e-9)
    assert metrics["theory/sigma_w2"] == pytest.approx(1.5) and metrics["theory/sigma_b2"] == pytest.approx(0.05)
    assert tags["regime"] == theory.regime(metrics["theory/chi1"])
    assert tags["gradient_flow"] in ("vanishing", "stable", "exploding") and tags["theory_agrees"] in ("yes", "no")
    assert metrics["theory/slope_error"] == pytest.approx(
        metrics["measured/grad_log_slope"] - metrics["theory/grad_log_slope"], abs=1e-12)

    # the predicted profile (step = layer) is anchored at the measured output layer's gradient norm
    measured = client.get_metric_history(run.info.run_id, "profile/grad_norm_init")
    predicted = client.get_metric_history(run.info.run_id, "profile/grad_norm_theory")
    assert [m.step for m in predicted] == [m.step for m in measured] == list(range(1, 8))
    assert predicted[-1].value == pytest.approx(measured[-1].value, rel=1e-12)
    table = pd.read_csv(client.download_artifacts(run.info.run_id, "theory.csv", str(tmp_path)))
    assert table["layer"].tolist() == list(range(1, 8))
    np.testing.assert_allclose(table["grad_norm_measured"], [m.value for m in measured], rtol=1e-12)

    # the Jacobian's spectrum at the initial weights: moons has 2 inputs, so 2 singular values a sample
    spectrum = np.load(client.download_artifacts(run.info.run_id, "jacobian.npz", str(tmp_path)))["singular_values"]
    assert spectrum.shape == (5, 2)
    assert metrics["jacobian/s_max"] == pytest.approx(spectrum.max(), rel=1e-12)
    assert metrics["jacobian/s2_mean"] == pytest.approx(np.mean(spectrum ** 2), rel=1e-12)


def test_no_prediction_without_a_variance(tmp_path):
    done = run_cli(tmp_path, "init=constant", "init.value=0.1", "trainer.epochs=2")
    assert done.returncode == 0, done.stderr
    _, run = _only_run(tmp_path)
    assert not any(k.startswith("theory/") for k in run.data.metrics) and "regime" not in run.data.tags


def test_gradient_flow_and_agreement_thresholds():
    # slope s of ln ||dL/dW||^2 per layer: the norm changes by exp(s (L-1) / 2) from the last layer to the first
    assert gradient_flow(-2 * math.log(10) / 4 * 1.01, n_layers=5) == "vanishing"  # just over 10x smaller
    assert gradient_flow(-2 * math.log(10) / 4 * 0.99, n_layers=5) == "stable"
    assert gradient_flow(+2 * math.log(10) / 4 * 1.01, n_layers=5) == "exploding"
    assert agrees(0.55, 0.5) and not agrees(0.8, 0.5) and agrees(-0.05, 0.0)

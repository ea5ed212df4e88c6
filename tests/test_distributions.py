"""Distributions (tracking.detail=full): fixed-bin histograms whose counts are exact, percentiles
of |dL/dW| computed independently, and the artifact read back through MLflow's client."""

import math

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from backprop_core import Network, Trainer, fit, get_initializer, get_loss, get_optimizer
from backprop_core.distributions import (EDGES, NEAR_ZERO, DistributionRecorder, histogram, magnitude_histogram,
                                         quantile_from_histogram)
from conftest import run_cli, store_uri


def test_histogram_bins_are_half_open_and_count_every_entry():
    values = np.array([0.0, -0.0, 1e-13, -1e-13, 1e-12, 0.3, -0.3, 2e4, -2e4, np.nan, np.inf, -np.inf])
    counts, nonfinite = histogram(values)
    assert counts.sum() + nonfinite == values.size and nonfinite == 3
    zero = int(np.searchsorted(EDGES, 0.0, side="right")) - 1
    assert EDGES[zero] == -1e-12 and EDGES[zero + 1] == 1e-12
    assert counts[zero] == 4  # 0, -0, +-1e-13: within [-1e-12, 1e-12)
    assert counts[zero + 1] == 1  # 1e-12 opens the first positive bin
    assert counts[-1] == 1 and counts[0] == 1  # beyond +-1e4: the open end bins
    # 0.3 lies in [10**-0.75, 10**-0.5) = [0.178, 0.316): quarter decades
    bin_of = int(np.searchsorted(EDGES, 0.3, side="right")) - 1
    assert EDGES[bin_of] == pytest.approx(10 ** -0.75) and EDGES[bin_of + 1] == pytest.approx(10 ** -0.5)
    assert counts[bin_of] == 1


def test_magnitudes_fold_the_negative_bins_onto_their_mirrors():
    rng = np.random.default_rng(0)
    values = rng.normal(size=5000) * 10.0 ** rng.uniform(-9, 2, size=5000)
    folded, edges = magnitude_histogram(histogram(values)[0])
    direct = np.histogram(np.abs(values), bins=np.concatenate([edges[:-1], [np.inf]]))[0]
    assert np.array_equal(folded, direct)  # |x| binned directly on [0, 1e-12, ..., 1e4, inf)
    # a quantile read off the bins lies in the bin that holds the exact one (a quarter decade wide)
    exact = np.quantile(np.abs(values), 0.5)
    read = quantile_from_histogram(folded, 0.5, edges)
    assert abs(math.log10(read) - math.log10(exact)) < 0.25


def test_recorder_counts_every_entry_and_reports_exact_percentiles():
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(64, 5)), rng.normal(size=(64, 2))
    net = Network([5, 16, 16, 2], "tanh").initialize(get_initializer("glorot_normal"), rng=np.random.default_rng(1))
    W0 = [W.copy() for W in net.weights]
    recorder = DistributionRecorder(every=3)
    result = fit(net, get_loss("mse"), get_optimizer("sgd", lr=0.05), X, Y, trainer=Trainer(epochs=7),
                 rng=np.random.default_rng(2), callbacks=[recorder])
    arrays = recorder.arrays()
    # logged records at steps 0..6 and the closing one (7): every 3rd logged record, and the closing one
    assert arrays["steps"].tolist() == [0, 3, 6, 7]
    for quantity, sizes in (("grad", [W.size for W in net.weights]), ("weight", [W.size for W in net.weights]),
                            ("act", [64 * n for n in net.sizes[1:]])):
        totals = arrays[quantity].sum(axis=2) + arrays[f"{quantity}_nonfinite"]
        assert (totals == np.array(sizes)).all(), quantity
    # the weights at step 0 are the initial ones, binned
    assert np.array_equal(arrays["weight"][0, 0], histogram(W0[0])[0])

    # step 0's percentiles and near-zero share, computed here from an independent backward pass
    fresh = Network([5, 16, 16, 2], "tanh").initialize(get_initializer("glorot_normal"), rng=np.random.default_rng(1))
    fresh.loss_and_grad(X, Y, get_loss("mse"))
    first = result.history[0]
    largest = max(np.abs(g).max() for g in fresh.dL_dW)
    for k, g in enumerate(fresh.dL_dW, start=1):
        assert first[f"grad_abs_p50/grad_abs_p50_l{k:02d}"] == pytest.approx(np.median(np.abs(g)), rel=1e-12)
        assert first[f"grad_abs_p95/grad_abs_p95_l{k:02d}"] == pytest.approx(np.percentile(np.abs(g), 95), rel=1e-12)
        share = np.mean(np.abs(g) <= NEAR_ZERO * largest)
        assert first[f"grad_near_zero/grad_near_zero_l{k:02d}"] == share
    assert "grad_abs_p50/grad_abs_p50_l01" not in result.history[1]  # step 1: not a histogram step


def test_near_zero_share_sees_dead_relu_units():
    net = Network([3, 4, 1], "relu").initialize(get_initializer("glorot_normal"), rng=np.random.default_rng(0))
    net.biases[0][...] = [-100.0, -100.0, 0.0, 0.0]  # two hidden units never fire: their weights get 0 gradient
    recorder = DistributionRecorder()
    recorder.on_fit_start(net, 1)
    X = np.random.default_rng(1).normal(size=(32, 3))
    net.loss_and_grad(X, X[:, :1], get_loss("mse"))
    record = recorder.snapshot(0)
    assert record["grad_near_zero/grad_near_zero_l01"] == 0.5  # 2 of 4 columns of W1 (3 x 4) are exactly 0
    assert record["grad_near_zero/grad_near_zero_l02"] == 0.5  # and 2 of the 4 rows of W2


def test_full_detail_run_logs_distributions_to_mlflow(tmp_path):
    done = run_cli(tmp_path, "architecture=deep", "architecture.depth=3", "architecture.width=8", "trainer.epochs=12",
                   "tracking.detail=full", "tracking.histogram_every=5")
    assert done.returncode == 0, done.stderr
    client = MlflowClient(store_uri(tmp_path))
    (run,) = client.search_runs([client.get_experiment_by_name("default").experiment_id])
    arrays = np.load(client.download_artifacts(run.info.run_id, "distributions.npz", str(tmp_path)))
    assert arrays["steps"].tolist() == [0, 5, 10, 12]  # every 5th logged record and the closing one
    net_sizes = [2, 8, 8, 8, 1]  # moons: 2 inputs, 1 output
    weight_sizes = [a * b for a, b in zip(net_sizes[:-1], net_sizes[1:])]
    assert (arrays["grad"].sum(axis=2) + arrays["grad_nonfinite"] == weight_sizes).all()
    history = client.get_metric_history(run.info.run_id, "grad_abs_p50/grad_abs_p50_l01")
    assert sorted(m.step for m in history) == [0, 5, 10, 12]
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} >= {"plots/distributions.png"}


def test_standard_detail_records_no_distributions(tmp_path):
    done = run_cli(tmp_path, "trainer.epochs=3", "tracking=none")
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob("outputs/**/distributions.npz"))
    assert "grad_abs_p50" not in next(tmp_path.glob("outputs/**/history.csv")).read_text()

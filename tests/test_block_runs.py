"""Residual and normalized nets through the command: a sweep over architecture x norm, recorded in MLflow."""

import pytest
from mlflow.tracking import MlflowClient

from conftest import run_cli, store_uri


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("blocks")
    done = run_cli(cwd, "-m", "architecture=deep,residual", "architecture.norm=none,batch,layer",
                   "architecture.width=8", "trainer.epochs=12", "tracking.report=never")
    assert done.returncode == 0, done.stderr
    client = MlflowClient(store_uri(cwd))
    runs = client.search_runs([client.get_experiment_by_name("default").experiment_id], "tags.kind = 'job'")
    return client, {(r.data.params["architecture"], r.data.params["architecture.norm"]): r for r in runs}


def test_every_architecture_and_norm_runs(sweep):
    _, runs = sweep
    assert set(runs) == {(a, n) for a in ("deep", "residual") for n in ("none", "batch", "layer")}
    assert {r.data.tags["status"] for r in runs.values()} == {"finished"}


def test_a_residual_run_records_its_blocks_by_number(sweep):
    client, runs = sweep
    metrics = runs["residual", "layer"].data.metrics
    # 8 blocks (the default): stem l01, blocks l02-l09, output l10
    assert {"grad_norm/grad_norm_l10", "branch_ratio/branch_ratio_b08", "stream_length/stream_length_b08",
            "log10_stream_length/log10_stream_length_b01", "gamma_grad_norm/gamma_grad_norm_l09",
            "beta_grad_norm/beta_grad_norm_l01"} <= set(metrics)
    profile = client.get_metric_history(runs["residual", "layer"].info.run_id, "profile/stream_length_init")
    assert [m.step for m in profile] == list(range(1, 9))


def test_a_plain_run_has_no_block_keys_and_batch_norm_says_how_it_validates(sweep):
    _, runs = sweep
    plain = runs["deep", "none"].data
    assert not any(k.startswith(("branch_ratio", "stream_length", "gamma_grad", "beta_grad", "alpha/")) for k in plain.metrics)
    assert "validation" not in plain.tags and "validation" not in runs["deep", "layer"].data.tags
    assert runs["deep", "batch"].data.tags["validation"].startswith("batch norm with running statistics")
    assert "gamma_grad_norm/gamma_grad_norm_l05" in runs["deep", "batch"].data.metrics  # 5 hidden layers
    assert "branch_ratio/branch_ratio_b01" not in runs["deep", "batch"].data.metrics


def test_theory_stands_beside_each_block_net_it_covers(sweep):
    client, runs = sweep
    for key in [("deep", "batch"), ("deep", "layer"), ("residual", "none"), ("residual", "layer")]:
        run = runs[key]
        assert {"theory/grad_log_slope", "measured/grad_log_slope"} <= set(run.data.metrics), key
        assert {"regime", "gradient_flow", "theory_agrees"} <= set(run.data.tags), key
    steps = [m.step for m in client.get_metric_history(runs["residual", "none"].info.run_id,
                                                         "profile/stream_length_theory")]
    assert steps == list(range(1, 9))
    # the prediction of the infinite batch, whatever sigma_w2: ln(pi / (pi - 1)) for ReLU, here the
    # default sigmoid's ln(E[sigmoid'^2] / Var[sigmoid]) = ln(1.0336)
    assert runs["deep", "batch"].data.metrics["theory/grad_log_slope"] == pytest.approx(0.033039, abs=1e-5)
    # batch norm inside residual blocks is not covered: the measured flow alone
    batch_residual = runs["residual", "batch"].data
    assert "theory/grad_log_slope" not in batch_residual.metrics and "regime" not in batch_residual.tags
    assert batch_residual.tags["gradient_flow"] in ("vanishing", "stable", "exploding")
    assert "measured/grad_log_slope" in batch_residual.metrics

"""The runner end to end, as a user runs it: real Hydra, real MLflow sqlite store, read back with MlflowClient."""

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from backprop_core import fit
import runner.run.train
from runner.run.build import build

from conftest import compose_cfg, run_cli, store_uri


def runs_of(cwd, kind="job"):
    """The jobs' runs (or, with ``kind="sweep"``, the sweeps' parent runs)."""
    client = MlflowClient(store_uri(cwd))
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments]) if experiments else []
    return client, [r for r in runs if r.data.tags.get("kind") == kind]


def engine_history(overrides):
    """What backprop_core computes for the same composition and seed, without the runner."""
    exp = build(compose_cfg(overrides))
    result = fit(exp.net, exp.loss, exp.optimizer, exp.data.X_train, exp.Y_train, trainer=exp.trainer,
                 rng=exp.shuffle_rng, validation=(exp.data.X_val, exp.Y_val), classification=True)
    return pd.DataFrame(list(result.history))


OVERRIDES = ["architecture.depth=3", "architecture.width=8", "trainer.epochs=30", "trainer.log_every=4",
             "tracking.detail=full", "seed=5"]
STEPS = [0, 4, 8, 12, 16, 20, 24, 28, 29, 30]  # every 4th update, the last (29), the closing record (30)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One single run with full detail, through the installed command; its MLflow run; what the engine
    computes for the same composition without the runner."""
    cwd = tmp_path_factory.mktemp("tracked")
    done = run_cli(cwd, *OVERRIDES)
    assert done.returncode == 0, done.stderr
    client, runs = runs_of(cwd)
    assert len(runs) == 1
    return cwd, done, client, runs[0], engine_history(OVERRIDES)


def test_a_run_says_where_to_look_and_nothing_of_mlflow_s_own(tracked):
    cwd, done, *_ = tracked
    assert f"mlflow ui --workers 1 --backend-store-uri {store_uri(cwd)}" in done.stdout
    assert "mlflow" not in done.stderr  # a fresh store's creation is no news (MLflow's INFO lines stay out)


def test_a_run_is_named_tagged_and_its_params_say_the_choice_once(tracked):
    _, _, client, run, _ = tracked
    assert run.info.status == "FINISHED" and run.info.run_name == "depth=3,width=8,epochs=30,log_every=4,seed=5"
    tags = run.data.tags
    assert tags["status"] == "finished" and tags["preset"] == "none" and tags["job_num"] == "0"
    assert tags["overrides"] == " ".join(OVERRIDES) and "sweep_id" not in tags
    assert tags["config_hash"] and tags["pid"] and tags["host"]
    params = run.data.params
    assert params["activation"] == "sigmoid" and params["init"] == "glorot_uniform" and params["loss"] == "bce"
    assert params["optimizer.lr"] == "0.1" and params["architecture.depth"] == "3" and params["seed"] == "5"
    assert "activation.name" not in params and "init.name" not in params  # the choice, said once
    assert client.get_experiment(run.info.experiment_id).name == "default"


@pytest.mark.parametrize("key", ["train/loss", "val/loss", "train/accuracy", "grad_norm/grad_norm_l01",
                                 "grad_norm/grad_norm_l04", "bias_grad_norm/bias_grad_norm_l02",
                                 "weight_norm/weight_norm_l03", "update_ratio/update_ratio_l01",
                                 "act_mean/act_mean_l01", "act_std/act_std_l03", "saturation/saturation_l02"])
def test_every_logged_record_is_the_engine_s(tracked, key):
    _, _, client, run, expected = tracked
    assert expected["step"].tolist() == STEPS
    history = client.get_metric_history(run.info.run_id, key)
    logged = expected.dropna(subset=[key])  # update_ratio: no update follows the closing record
    assert [m.step for m in history] == logged["step"].tolist()
    np.testing.assert_allclose([m.value for m in history], logged[key], rtol=1e-12)


def test_the_summary_metrics_are_the_closing_record_s(tracked):
    _, done, _, run, expected = tracked
    metrics = run.data.metrics
    assert metrics["final/train_loss"] == expected["train/loss"].iloc[-1]  # the closing record's
    assert f"train loss {metrics['final/train_loss']:.4g}" in done.stdout
    assert 0 <= metrics["final/val_accuracy"] <= 1
    assert metrics["grad_ratio_first_last"] == pytest.approx(
        expected["grad_norm/grad_norm_l01"][0] / expected["grad_norm/grad_norm_l04"][0], rel=1e-12)
    assert metrics["log10_grad_ratio_first_last"] == pytest.approx(np.log10(metrics["grad_ratio_first_last"]))
    assert "diverged_at_step" not in metrics


def test_the_artifacts_and_the_image_records_are_all_there(tracked):
    cwd, _, client, run, _ = tracked
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    # full detail: the distributions too; glorot_uniform has a variance: the theory's table
    assert {"config.yaml", "history.csv", "plots", "distributions.npz", "theory.csv"} <= artifacts
    plots = {a.path: a.file_size for a in client.list_artifacts(run.info.run_id, "plots")}
    assert set(plots) == {"plots/loss.png", "plots/grad_norms.png", "plots/grad_profile.png", "plots/distributions.png"}
    assert all(size > 1000 for size in plots.values())
    records = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
    images = {path.split("/")[1].split("+step+")[0] for path in records}
    assert images == {"loss", "grad_norms", "grad_profile", "distributions"}  # the UI's image grid shows them
    # each record's PNG is the figure's file, byte for byte; its thumbnail is of the same picture
    folder = cwd / "downloaded"
    for name in images:
        (record,) = [p for p in records if p.startswith(f"images/{name}+") and p.endswith(".png")]
        logged = Path(client.download_artifacts(run.info.run_id, record, str(folder)))
        drawn = Path(client.download_artifacts(run.info.run_id, f"plots/{name}.png", str(folder)))
        assert logged.read_bytes() == drawn.read_bytes()
        (thumbnail,) = [p for p in records if p.startswith(f"images/{name}+") and p.endswith("+compressed.webp")]
        with Image.open(client.download_artifacts(run.info.run_id, thumbnail, str(folder))) as small, \
                Image.open(drawn) as large:
            assert max(small.size) == 256 and abs(small.size[0] / small.size[1] - large.size[0] / large.size[1]) < 0.02


def test_history_csv_holds_every_record_at_full_precision(tracked):
    cwd, _, client, run, expected = tracked
    history = pd.read_csv(client.download_artifacts(run.info.run_id, "history.csv", str(cwd)))
    assert history["step"].tolist() == STEPS and "delta_norm/delta_norm_l02" in history
    assert "dead_fraction/dead_fraction_l02" not in history  # sigmoid has no zero-derivative region: no dead units
    np.testing.assert_array_equal(history["grad_norm/grad_norm_l02"], expected["grad_norm/grad_norm_l02"])


@pytest.mark.parametrize("name,step", [("grad_norm_init", 0), ("grad_norm_final", 30), ("delta_norm_init", 0),
                                       ("act_std_final", 30)])
def test_profiles_have_the_layer_as_their_step(tracked, name, step):
    _, _, client, run, expected = tracked
    profile = client.get_metric_history(run.info.run_id, f"profile/{name}")
    quantity = name.rsplit("_", 1)[0]
    assert [m.step for m in profile] == [1, 2, 3, 4]
    at_step = expected[expected["step"] == step]
    np.testing.assert_array_equal([m.value for m in profile], [at_step[f"{quantity}/{quantity}_l0{k}"].item()
                                                               for k in (1, 2, 3, 4)])


def test_each_artifact_is_stored_once_in_mlflow(tracked):
    cwd, done, *_ = tracked
    run_dir = next((cwd / "outputs" / "runs").glob("*/*"))
    assert not (run_dir / "history.csv").exists() and not (run_dir / "plots").exists()
    assert f"run directory: {run_dir}" in done.stdout and (run_dir / "app.log").read_text().count("finished") == 1


def test_standard_detail_keeps_mlflow_lean_and_the_csv_complete(tmp_path):
    done = run_cli(tmp_path, "trainer.epochs=5", "architecture.depth=2")
    assert done.returncode == 0, done.stderr
    client, (run,) = runs_of(tmp_path)
    keys = set(run.data.metrics)
    assert {"train/loss", "val/loss", "grad_norm/grad_norm_l01", "grad_norm/grad_norm_l03"} <= keys
    assert not any(k.startswith(("bias_grad_norm/", "weight_norm/", "act_std/")) for k in keys)
    history = pd.read_csv(client.download_artifacts(run.info.run_id, "history.csv", str(tmp_path)))
    assert {"bias_grad_norm/bias_grad_norm_l01", "weight_norm/weight_norm_l03", "act_std/act_std_l02", "update_ratio/update_ratio_l01"} <= set(history.columns)


def test_default_log_every_keeps_about_a_thousand_points(tmp_path):
    done = run_cli(tmp_path, "trainer.epochs=2500", "architecture.depth=1", "architecture.width=4")
    assert done.returncode == 0, done.stderr
    client, (run,) = runs_of(tmp_path)
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    # log_every = ceil(2500 / 1000) = 3; 2499 is the last update, 2500 the closing record
    assert steps == [*range(0, 2500, 3), 2500]


def test_a_multirun_on_a_fresh_store_shares_one_sweep_id(tmp_path):
    done = run_cli(tmp_path, "-m", "architecture.depth=1,3", "activation=tanh,relu", "trainer.epochs=10")
    assert done.returncode == 0, done.stderr
    _, runs = runs_of(tmp_path)
    assert len(runs) == 4
    assert {r.data.tags["status"] for r in runs} == {"finished"}
    assert {r.info.status for r in runs} == {"FINISHED"}
    sweep_ids = {r.data.tags["sweep_id"] for r in runs}
    assert len(sweep_ids) == 1
    assert sorted(r.data.tags["job_num"] for r in runs) == ["0", "1", "2", "3"]
    assert sorted(r.info.run_name for r in runs) == sorted(
        f"depth={d},activation={a}" for d in (1, 3) for a in ("tanh", "relu"))  # what varies, not epochs=10
    assert {r.data.tags["overrides"].split()[-1] for r in runs} == {"trainer.epochs=10"}  # the whole command line
    sweep_id = sweep_ids.pop()
    assert f"sweep {sweep_id}: 4 jobs in " in done.stdout and "s (4 finished)" in done.stdout
    # the sweep is a parent run: every job's run is its child, and it closes with the sweep's counts
    client, (parent,) = runs_of(tmp_path, kind="sweep")
    assert parent.data.tags["sweep_id"] == sweep_id and parent.info.status == "FINISHED"
    assert parent.data.tags["status"] == "finished" and parent.data.tags["command"].startswith("backprop-lab -m ")
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    assert parent.data.metrics["sweep/jobs"] == 4 and parent.data.metrics["sweep/finished"] == 4
    assert parent.data.metrics["sweep/failed"] == 0
    assert sorted(r.data.metrics["swept/architecture.depth"] for r in runs) == [1, 1, 3, 3]  # sortable numbers
    summary = client.download_artifacts(parent.info.run_id, "sweep_summary.txt", str(tmp_path))
    assert "4 jobs in" in open(summary).read()
    # tracking.report=auto: the sweep's answer is attached to its parent run, and the closing lines link to it
    report = {f.path for f in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/grad_profile.png", "report/report.html", "report/summary.csv"} <= report
    images = {f.path for f in client.list_artifacts(parent.info.run_id, "images")}
    assert any("grad_profile" in path for path in images)  # an image record: the chart view's image grid
    # each figure's record: its very file, and a thumbnail of the same picture (made in the figure's process)
    for figure in (path for path in report if path.endswith(".png")):
        name = Path(figure).stem
        (record,) = [p for p in images if p.startswith(f"images/{name}+") and p.endswith(".png")]
        (thumbnail,) = [p for p in images if p.startswith(f"images/{name}+") and p.endswith("+compressed.webp")]
        drawn = Path(client.download_artifacts(parent.info.run_id, figure, str(tmp_path / "drawn")))
        assert Path(client.download_artifacts(parent.info.run_id, record, str(tmp_path / "record"))).read_bytes() \
            == drawn.read_bytes()
        with Image.open(client.download_artifacts(parent.info.run_id, thumbnail, str(tmp_path / "small"))) as small, \
                Image.open(drawn) as large:
            assert max(small.size) == 256
            # compared at 64 px: resampling a heatmap's stripes twice differs by ~2 at 256 px (same picture)
            same, expected = (np.asarray(image.convert("RGB").resize(small.size).resize((64, 64)), float)
                              for image in (small, large))
            assert np.abs(same - expected).mean() < 2, name  # the same: 0.3 to 1.1; another figure: 3.6 to 70
    experiment_id = parent.info.experiment_id
    # each in MLflow's Model training view (``make test-ui`` checks what a browser shows of each)
    assert f"/#/experiments/{experiment_id}/runs?workflowType=machine_learning\n" in done.stdout
    assert (f"/#/experiments/{experiment_id}/runs/{parent.info.run_id}/artifacts/report/grad_profile.png"
            "?workflowType=machine_learning\n") in done.stdout
    chart = next(line for line in done.stdout.splitlines() if "/#/metric?" in line)
    assert "profile/log10_grad_norm_init" in chart and all(r.info.run_id in chart for r in runs)
    assert chart.endswith("&workflowType=machine_learning")
    # on the console a job says its summary line only: where its records are is in its app.log (and the
    # closing lines say where all of them are); before, 4 jobs printed 4 identical "Open it with" lines
    assert "Open it with" not in done.stdout and "run directory:" not in done.stdout
    assert sorted(line.split(":")[0] for line in done.stdout.splitlines() if ": finished 10 updates" in line) == \
        sorted(r.info.run_name for r in runs)
    for run in runs:
        log = (tmp_path / "outputs" / "multirun").glob(f"*/*/{run.data.tags['job_num']}/app.log")
        text = next(log).read_text()
        assert "run directory: " in text and f"run {run.info.run_id}. Open it with:  " in text


def test_overrides_on_both_sides_of_multirun_make_one_sweep(monkeypatch, tmp_path):
    """``-m`` typed after an override: Hydra's parser alone stops at the next one ("unrecognized arguments")."""
    from runner.cli import switch_first
    from test_bad_input import run_in_process

    assert switch_first(["a=1", "-m", "b=2,3", "--multirun"]) == ["-m", "--multirun", "a=1", "b=2,3"]
    code, out, err = run_in_process(monkeypatch, tmp_path, "activation=relu", "-m", "architecture.depth=1,2",
                                    "trainer.max_steps=1", "tracking=none")
    assert code in (0, None), err
    assert "2 jobs in" in out and "(2 finished)" in out
    configs = sorted((tmp_path / "outputs" / "multirun").glob("*/*/*/.hydra/overrides.yaml"))
    assert len(configs) == 2 and all("activation=relu" in c.read_text() for c in configs)


def test_a_sweep_of_more_runs_than_a_chart_link_names_points_to_the_runs_table():
    from runner.tracking.links import MAX_CHART_RUNS, profiles_link

    few = profiles_link("3", [f"run{i}" for i in range(MAX_CHART_RUNS)], "profile/log10_grad_norm_init")
    assert "/#/metric?" in few and "run99" in few
    many = profiles_link("3", [f"run{i}" for i in range(1000)], "profile/log10_grad_norm_init")
    assert many == ("1000 runs, more than a chart link names (100): select some in "
                    "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning and open its chart view on profile/log10_grad_norm_init")


def test_a_diverging_run_is_recorded_and_exits_0(tmp_path):
    done = run_cli(tmp_path, "activation=relu", "init=normal", "init.std=5", "optimizer.lr=10", "loss=mse",
                   "trainer.epochs=50")
    assert done.returncode == 0, done.stderr
    assert "diverged at step" in done.stdout
    client, (run,) = runs_of(tmp_path)
    assert run.data.tags["status"] == "diverged" and run.info.status == "FINISHED"
    at = run.data.metrics["diverged_at_step"]
    losses = client.get_metric_history(run.info.run_id, "train/loss")
    grad_norms = client.get_metric_history(run.info.run_id, "grad_norm/global")
    assert losses[-1].step == grad_norms[-1].step == at
    # MLflow's store keeps NaN but clamps +-inf to +-1.797e308
    blown = lambda v: not math.isfinite(v) or abs(v) >= 1.7e308  # noqa: E731
    assert blown(losses[-1].value) or blown(grad_norms[-1].value)
    assert not any(blown(m.value) for m in losses[:-1] + grad_norms[:-1])
    history = pd.read_csv(client.download_artifacts(run.info.run_id, "history.csv", str(tmp_path)))
    assert history["step"].iloc[-1] == at
    assert not np.isfinite(history[["train/loss", "grad_norm/global"]].iloc[-1]).all()  # the true inf / nan


def test_a_sweep_goes_on_past_a_diverging_job(tmp_path):
    done = run_cli(tmp_path, "-m", "tracking.report=never", "optimizer.lr=0.01,1000", "activation=relu", "loss=mse", "trainer.epochs=20")
    assert done.returncode == 0, done.stderr
    _, runs = runs_of(tmp_path)
    assert sorted(r.data.tags["status"] for r in runs) == ["diverged", "finished"]
    assert "1 diverged, 1 finished" in done.stdout and "diverged: #1 lr=1000" in done.stdout


def test_tracking_none_writes_no_store_and_never_imports_mlflow(tmp_path):
    code = ("import sys; sys.argv = ['backprop-lab', 'tracking=none', 'trainer.epochs=3'];"
            "import runner.cli; runner.cli.main() if False else None;"
            "\ntry:\n    runner.cli.main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'mlflow' not in sys.modules, 'mlflow was imported'\nprint('OK')")
    import subprocess
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
    assert list((tmp_path / "outputs" / "runs").glob("*/*/history.csv"))


def test_a_batch_larger_than_the_data_says_every_step_is_full_batch(monkeypatch, tmp_path):
    from test_bad_input import run_in_process

    code, out, err = run_in_process(monkeypatch, tmp_path, "trainer.batch_size=5000", "trainer.epochs=2",
                                    "tracking=none")
    assert code == 0, err
    assert "trainer.batch_size=5000 exceeds the 300 training samples: every step is full batch" in out
    code, out, _ = run_in_process(monkeypatch, tmp_path, "trainer.batch_size=300", "trainer.epochs=2", "tracking=none")
    assert code == 0 and "exceeds" not in out


def test_cross_entropy_after_sigmoid_outputs_says_it_cannot_tell_classes_apart(monkeypatch, tmp_path):
    from test_bad_input import run_in_process

    code, out, err = run_in_process(monkeypatch, tmp_path, "loss=cross_entropy",
                                    "loss.output_activation=sigmoid", "trainer.epochs=2", "tracking=none")
    assert code == 0, err
    assert ("loss=cross_entropy after loss.output_activation=sigmoid scores only the outputs of each "
            "sample's own class: every output at 1 brings it to 0") in out
    for pair in (["loss=cross_entropy"], ["loss=bce"]):  # softmax by default; bce after sigmoid
        code, out, _ = run_in_process(monkeypatch, tmp_path, *pair, "trainer.epochs=2", "tracking=none")
        assert code == 0 and "scores only" not in out, pair


def test_tracking_uri_and_environment_override_the_embedded_store(tmp_path):
    elsewhere = f"sqlite:///{tmp_path / 'team.db'}"
    done = run_cli(tmp_path, f"tracking.uri={elsewhere}", "tracking.experiment=mine", "trainer.epochs=2")
    assert done.returncode == 0, done.stderr
    from_env = run_cli(tmp_path, "trainer.epochs=2", env={"MLFLOW_TRACKING_URI": elsewhere})
    assert from_env.returncode == 0, from_env.stderr
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
    client = MlflowClient(elsewhere)
    names = {e.name: len(client.search_runs([e.experiment_id])) for e in client.search_experiments()}
    assert names == {"mine": 1, "default": 1}  # MLflow's own "Default" is our "default": one, not two


def test_help_lists_the_groups_and_cfg_prints_the_composition(tmp_path):
    done = run_cli(tmp_path, "--help")
    assert done.returncode == 0
    for group in ("architecture", "activation", "loss", "init", "optimizer", "dataset", "trainer", "tracking"):
        assert f"{group}: " in done.stdout
    assert "schemas" not in done.stdout
    done = run_cli(tmp_path, "--cfg", "job", "activation=relu")
    assert done.returncode == 0 and "name: relu" in done.stdout and "lr: 0.1" in done.stdout
    # help that fits the choice: sgd's config holds sgd's keys, not adam's or momentum's
    done = run_cli(tmp_path, "--cfg", "job", "optimizer=sgd")
    optimizer = done.stdout.split("optimizer:")[1].split("dataset:")[0]
    assert "lr: 0.1" in optimizer and "beta1" not in optimizer and "momentum" not in optimizer
    done = run_cli(tmp_path, "--help", "optimizer=adam")
    assert "beta1: 0.9" in done.stdout and "rho" not in done.stdout
    done = run_cli(tmp_path, "--version")
    assert done.returncode == 0 and done.stdout.startswith("backprop-lab 0.") and "Hydra" in done.stdout


def test_an_exception_marks_the_run_failed_never_running(tmp_path, monkeypatch):
    """Fault injection: the fit loop raises mid-run; the MLflow run must end FAILED."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    import runner.cli
    from conftest import CONF

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["trainer.epochs=3"], return_hydra_config=True)
    cfg.hydra.runtime.output_dir = str(tmp_path / "run")
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # the task function sees the config without its hydra node

    def broken_fit(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(runner.run.train, "fit", broken_fit)
    with pytest.raises(RuntimeError, match="injected"):
        runner.run.train.train(cfg)
    _, (run,) = runs_of(tmp_path)
    assert run.info.status == "FAILED" and run.data.tags["status"] == "failed"


def test_a_loss_that_explodes_over_hundreds_of_decades_still_plots(tmp_path):
    # the loss climbs from 1e3 to 1e285 before the gradient overflows: the plots must not
    done = run_cli(tmp_path, "experiment=exploding_init", "init.std=1.0", "architecture.depth=4",
                   "trainer.clip_grad_norm=null")
    assert done.returncode == 0, done.stderr
    client, (run,) = runs_of(tmp_path)
    assert run.data.tags["status"] == "diverged"
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {
        "plots/loss.png", "plots/grad_norms.png", "plots/grad_profile.png"}


@pytest.mark.parametrize("activation, ratio", [
    # zero weights: sigmoid(0) = 1/2 feeds the last layer a gradient, and W = 0 passes none back to layer 1
    ("sigmoid", "|grad l1| / |grad l6| at step 0 = 0"),
    # ReLU(0) = 0: the last layer's inputs are 0, so is its gradient; the ratio is 0/0
    ("relu", "|grad l1| / |grad l6| at step 0 = undefined: |grad l6| is 0")])
def test_a_zero_init_run_says_what_its_gradients_are_without_a_warning(tmp_path, activation, ratio):
    done = run_cli(tmp_path, "init=zeros", f"activation={activation}", "trainer.epochs=2", "tracking=none")
    assert done.returncode == 0, done.stderr
    assert "finished 2 updates" in done.stdout and done.stdout.splitlines()[-2].endswith(ratio), done.stdout
    assert "Warning" not in done.stderr, done.stderr

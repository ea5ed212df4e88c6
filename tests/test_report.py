"""python -m runner.report reads a sweep back from MLflow and writes tables and figures."""

import os
import subprocess
import sys

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import runner.report.cli

from conftest import run_cli, store_uri, assert_drawn


def test_report_of_a_sweep(tmp_path):
    done = run_cli(tmp_path, "-m", "tracking.report=never", "architecture.depth=1,3", "activation=sigmoid,relu", "trainer.epochs=20",
                   "tracking.experiment=study")
    assert done.returncode == 0, done.stderr
    older = run_cli(tmp_path, "trainer.epochs=5", "tracking.experiment=study")  # not part of the sweep
    assert older.returncode == 0, older.stderr

    report = subprocess.run([sys.executable, "-m", "runner.report", "study"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    folder = tmp_path / "outputs" / "reports" / "study"
    table = pd.read_csv(folder / "summary.csv")
    assert len(table) == 4  # the latest sweep only
    assert {"run", "architecture.depth", "activation", "final/val_loss", "grad_ratio_first_last", "diverged"} <= set(
        table.columns)
    assert "activation.name" not in table.columns  # same as the group choice: shown once
    assert sorted(table["architecture.depth"]) == [1, 1, 3, 3]
    md = (folder / "summary.md").read_text()
    assert md.count("\n") == 6 and md.startswith("| run |")
    for figure in ("grad_profile.png", "loss_curves.png", "grad_heatmaps.png"):
        assert_drawn(folder / figure)
    page = (folder / "report.html").read_text()  # self-contained: every figure inline, the tables as HTML
    assert page.count("src='data:image/png;base64,") == len(list(folder.glob("*.png")))
    assert page.count("<tr>") > 4 and "src='http" not in page

    client = MlflowClient(store_uri(tmp_path))
    experiment = client.get_experiment_by_name("study")
    # the report's files go to the sweep's parent run: no sibling "report" run among the sweep's
    assert client.search_runs([experiment.experiment_id], "tags.kind = 'report'") == []
    (parent,) = client.search_runs([experiment.experiment_id], "tags.kind = 'sweep'")
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "report")} >= {
        "report/summary.csv", "report/grad_profile.png"}

    everything = subprocess.run([sys.executable, "-m", "runner.report", "study", "--all", "--no-mlflow"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert everything.returncode == 0, everything.stderr
    assert len(pd.read_csv(folder / "summary.csv")) == 5  # the sweep's parent run is left out


def test_an_exploding_sweep_gets_its_whole_report(tmp_path):
    """exploding_init in small: a swept param some runs leave null (clip_grad_norm), runs that diverge at
    step 1.  Its auto-report failed on pandas 3, which only a warning said (the sweep exits 0)."""
    done = run_cli(tmp_path, "-m", "activation=relu", "init=normal", "init.std=0.1,1.0", "architecture.depth=12",
                   "trainer.clip_grad_norm=null,1.0", "loss=mse", "loss.output_activation=identity",
                   "optimizer.lr=0.01", "trainer.epochs=3", "tracking.experiment=blowup")
    assert done.returncode == 0, done.stderr
    assert "report of the sweep" in done.stdout and "report failed" not in done.stderr, done.stderr
    folder = next((tmp_path / "outputs" / "multirun").glob("*/*/report"))
    table = pd.read_csv(folder / "summary.csv", keep_default_na=False)
    assert sorted(table["trainer.clip_grad_norm"]) == ["1.0", "1.0", "null", "null"]
    assert table["diverged"].tolist().count(True) == 1  # std=1.0 without clipping, at step 1
    for figure in ("grad_profile.png", "loss_curves.png", "grad_heatmaps.png"):
        assert_drawn(folder / figure)
    assert "1 of 2 runs diverged (std=1 at step 1)" in (folder / "report.html").read_text()


def test_a_sweep_without_tracking_gets_the_report_of_its_tracked_twin(tmp_path):
    """``tracking=none`` keeps no store: the sweep's closing lines print the command that reads its folder
    (job.json, config.yaml, .hydra) into the report.  Its table is the one the same sweep tracked in MLflow
    gets from the store: the same axes, runs and numbers (the runs are deterministic)."""
    import re

    args = ["-m", "architecture.depth=2,4", "activation=relu,tanh", "trainer.epochs=20"]
    (tmp_path / "tracked").mkdir(), (tmp_path / "none").mkdir()
    tracked = run_cli(tmp_path / "tracked", *args)
    untracked = run_cli(tmp_path / "none", *args, "tracking=none")
    assert tracked.returncode == 0 and untracked.returncode == 0, tracked.stderr + untracked.stderr
    (command,) = re.findall(r"^The sweep's report \(.*\): (.+ -m runner\.report --folder \S+)$", untracked.stdout, re.M)
    report = subprocess.run(command, shell=True, cwd=tmp_path / "none", capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    assert not (tmp_path / "none" / "outputs" / "mlflow.db").exists()  # nothing goes to a store

    (folder,) = (tmp_path / "none" / "outputs" / "multirun").glob("*/*/report")
    (twin,) = (tmp_path / "tracked" / "outputs" / "multirun").glob("*/*/report")  # the tracked sweep's own
    pd.testing.assert_frame_equal(pd.read_csv(folder / "summary.csv"), pd.read_csv(twin / "summary.csv"))
    assert (folder / "pivots.md").read_text() == (twin / "pivots.md").read_text()
    for figure in ("grad_profile.png", "loss_curves.png", "grad_heatmaps.png", "length_map.png"):
        assert_drawn(folder / figure)


def test_the_report_of_a_folder_says_what_is_wrong_in_one_line(monkeypatch, capsys, tmp_path):
    assert report_refuses(monkeypatch, capsys, tmp_path, "--folder", "nowhere").endswith(
        "--folder=nowhere: no such directory")
    assert "holds no job.json" in report_refuses(monkeypatch, capsys, tmp_path, "--folder", ".")


def report_refuses(monkeypatch, capsys, cwd, *args: str) -> str:
    """``python -m runner.report ARGS`` in ``cwd``, in this process: its one error line (exit status 2)."""
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(SystemExit) as exit_:
        runner.report.cli.main(list(args))
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m runner.report: error: "), lines
    return lines[0]


def test_report_names_the_experiments_it_knows(monkeypatch, capsys, tmp_path):
    done = run_cli(tmp_path, "trainer.epochs=2")
    assert done.returncode == 0
    line = report_refuses(monkeypatch, capsys, tmp_path, "defualt")
    # MLflow's own empty "Default" experiment is not offered
    assert f"experiment=defualt: not in the store {store_uri(tmp_path)}; experiments with runs: default; " \
           "did you mean 'default'?" in line


def test_a_report_without_a_store_creates_none(monkeypatch, capsys, tmp_path):
    line = report_refuses(monkeypatch, capsys, tmp_path, "default")
    assert f"no --uri: no store at {tmp_path}/outputs/mlflow.db: run an experiment first" in line
    line = report_refuses(monkeypatch, capsys, tmp_path, "default", "--uri", f"sqlite:///{tmp_path}/elsewhere/m.db")
    assert f"--uri=sqlite:///{tmp_path}/elsewhere/m.db: no store at" in line
    assert list(tmp_path.iterdir()) == []


def test_report_pivots_the_swept_axes_and_aggregates_seeds(tmp_path):
    import statistics

    done = run_cli(tmp_path, "-m", "tracking.report=never", "architecture.depth=1,3", "activation=tanh,relu", "seed=0,1", "trainer.epochs=15",
                   "architecture.width=4", "tracking.experiment=seeds", "tracking.detail=full")
    assert done.returncode == 0, done.stderr
    report = subprocess.run([sys.executable, "-m", "runner.report", "seeds", "--no-mlflow"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    folder = tmp_path / "outputs" / "reports" / "seeds"
    pivot = pd.read_csv(folder / "pivot_final_val_loss.csv", index_col=0)
    # one cell per swept combination: rows depth (numeric, ordered), columns activation in the grid's order
    # (tanh before relu, as the summary lists them, not as text sorts them); seeds aggregated
    assert list(pivot.index) == [1, 3] and list(pivot.columns) == ["activation=tanh", "activation=relu"]
    client = MlflowClient(store_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("seeds").experiment_id], "tags.kind = 'job'")
    for depth in (1, 3):
        for activation in ("tanh", "relu"):
            losses = [r.data.metrics["final/val_loss"] for r in runs
                      if r.data.params["architecture.depth"] == str(depth) and r.data.params["activation"] == activation]
            assert len(losses) == 2  # the two seeds
            expected = f"{statistics.mean(losses):.4g} ± {statistics.stdev(losses):.2g}"  # by hand: mean, sample std
            assert pivot.loc[depth, f"activation={activation}"] == expected
    assert "### log10_grad_ratio_first_last" in (folder / "pivots.md").read_text()
    assert_drawn(folder / "grad_distributions.png")  # full detail: the histograms drawn


def test_seed_band_is_the_geometric_mean_and_std_of_log10():
    import numpy as np

    from runner.report.small_multiples import seed_band

    # two seeds: 1 and 100 at the first step, 10 and 10 at the second, the third diverged in one seed
    mean, low, high = seed_band([np.array([1.0, 10.0, np.inf, 5.0]), np.array([100.0, 10.0, 4.0])])
    # by hand: log10 values (0, 2) -> mean 1, sample std sqrt(2); (1, 1) -> 1, 0; (nan, log10 4) -> one seed
    assert np.allclose(mean[:2], [10.0, 10.0]) and len(mean) == 3  # cut to the shortest seed
    assert np.allclose(low[:2], [10 ** (1 - 2 ** 0.5), 10.0]) and np.allclose(high[:2], [10 ** (1 + 2 ** 0.5), 10.0])
    assert mean[2] == 4.0 or np.isclose(mean[2], 4.0)  # the finite seed alone


def test_report_draws_the_theory_figures_of_a_mean_field_sweep(tmp_path):
    done = run_cli(tmp_path, "-m", "tracking.report=never", "init=mean_field", "init.sigma_w2=1.0,2.0", "init.sigma_b2=0.05", "activation=tanh",
                   "architecture.depth=2,4", "architecture.width=8", "trainer.epochs=3", "trainer.jacobian_samples=3",
                   "tracking.experiment=phase")
    assert done.returncode == 0, done.stderr
    report = subprocess.run([sys.executable, "-m", "runner.report", "phase", "--no-mlflow"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    folder = tmp_path / "outputs" / "reports" / "phase"
    for figure in ("phase_diagram.png", "grad_slopes.png", "jacobian_spectra.png", "length_map.png"):
        assert_drawn(folder / figure)


def test_the_slope_figure_colours_by_depth_only_where_depth_varies(tmp_path, monkeypatch):
    """norm_compare's 33-layer nets drew a colour bar "depth" from 29.7 to 36.3 for one value; the title
    says the depth and how many runs the theory covers instead.  A panel without a length map says so."""
    from runner.report import small_multiples as sm
    import warnings

    from runner.report import theory_figures as tf

    figures = []
    monkeypatch.setattr(tf, "save_figure", lambda fig, path, margins: figures.append(fig) or path)
    monkeypatch.setattr(sm, "save_figure", lambda fig, path, margins: figures.append(fig) or path)
    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "run_name": ["a", "b", "c"], "params.architecture.depth": ["33"] * 3,
                         "params.architecture.norm": ["none", "batch", "layer"],
                         "metrics.theory/grad_log_slope": [0.1, 0.2, float("nan")],
                         "metrics.measured/grad_log_slope": [0.11, 0.19, 0.3]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warned of a colour map without colours (to every user)
        tf.plot_slopes(runs, tmp_path / "s.png")
    fig = figures.pop()
    assert len(fig.axes) == 1 and fig.axes[0].get_title().endswith("(2 runs, depth 33)")
    tf.plot_slopes(runs.assign(**{"params.architecture.depth": ["8", "16", "16"]}), tmp_path / "s.png")
    fig = figures.pop()
    assert [ax.get_ylabel() for ax in fig.axes[1:]] == ["depth"] and fig.axes[0].get_title().endswith("(2 runs)")

    table = pd.DataFrame({"layer": [1, 2], "q_measured": [1.0, 0.5], "q_theory": [1.0, 0.4]})
    tf.plot_lengths(runs, {"a": table, "c": table}, ["params.architecture.norm"], tmp_path / "l.png")
    fig = figures.pop()
    assert [[t.get_text() for t in ax.texts] for ax in fig.axes[:3]] == [[], ["no length map for this net"], []]


def test_a_param_derived_from_a_swept_one_is_not_a_second_axis():
    from runner.report.axes import swept_columns

    runs = pd.DataFrame({"params.activation": ["tanh", "relu", "tanh", "relu"],
                         "params.init.sigma_w2": ["1.086", "2.0", "1.086", "2.0"],  # ${critical_sigma_w2:...}
                         "params.architecture.depth": ["8", "8", "32", "32"]})
    assert swept_columns(runs) == ["params.activation", "params.architecture.depth"]


def test_a_grid_s_runs_are_tabled_in_its_order_not_the_order_they_ran():
    """Launched longest first, depth 16's runs come first; the tables read depth (the first override) in
    numbers, then the activation in the order the runs name it, then the seed in numbers.  A
    search's trials, and runs that do not say their overrides, keep their order."""
    from runner.report.axes import in_sweep_order

    ran = [("16", "tanh", "1"), ("16", "tanh", "0"), ("16", "relu", "0"), ("2", "tanh", "0"), ("4", "tanh", "0"),
           ("2", "relu", "0"), ("4", "relu", "0")]
    runs = pd.DataFrame({"run_id": [f"r{i}" for i in range(len(ran))],
                         "params.seed": [s for _, _, s in ran], "params.activation": [a for _, a, _ in ran],
                         "params.architecture.depth": [d for d, _, _ in ran],
                         "overrides": [f"experiment=x architecture.depth={d} activation={a} seed={s}" for d, a, s in ran]})
    swept = ["params.seed", "params.activation", "params.architecture.depth"]
    ordered, axes = in_sweep_order(runs, swept)
    assert axes == ["params.architecture.depth", "params.activation", "params.seed"]
    assert list(ordered["run_id"]) == ["r3", "r5", "r4", "r6", "r1", "r0", "r2"]
    assert list(ordered.index) == list(range(len(ran)))  # positions and labels agree (the heatmaps' grid)
    searched = runs.assign(searched=[False] * 6 + [True])
    assert in_sweep_order(searched, swept)[0] is searched
    older = runs.assign(overrides=[None] * len(ran))
    assert in_sweep_order(older, swept)[0] is older


def test_a_search_s_samples_are_axes_named_in_the_lines_not_panels_of_one_run(tmp_path, monkeypatch):
    """Two params a search samples differ in every run: both are axes (one was taken for a copy of the
    other, and left out), neither gets panels of one run each; each line names both, to 6 digits; the
    heatmaps come in rows of 6 (a row and a column per sample left a 10 x 10 grid 90 % empty)."""
    import numpy as np

    from runner.report import small_multiples as sm
    from runner.report.axes import swept_columns
    from runner.report.sweep_figures import heatmap_grid
    from runner.report.tables import pivot_tables

    figures = []
    monkeypatch.setattr(sm, "save_figure", lambda fig, path, margins: figures.append(fig) or path)
    rng = np.random.default_rng(0)
    runs = pd.DataFrame({"run_id": [f"r{i}" for i in range(10)], "run_name": [f"run{i}" for i in range(10)],
                         "params.optimizer.lr": [repr(float(x)) for x in 10 ** rng.uniform(-2, 0, 10)],
                         "params.init.std": [repr(float(x)) for x in 10 ** rng.uniform(-1.3, 0, 10)],
                         "params.activation": ["tanh"] * 10})
    swept = swept_columns(runs)
    assert swept == ["params.optimizer.lr", "params.init.std"]
    sm.small_multiples(runs, {f"r{i}": i for i in range(10)}, swept, tmp_path / "a.png",
                       lambda ax, items, colour, label: ax.plot([1, 2], [1.0, 2.0], color=colour, label=label),
                       "layer", "norm")
    fig = figures.pop()
    assert len(fig.axes) == 1  # one panel, its ten lines coloured by the learning rate
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    lr, std = float(runs["params.optimizer.lr"][0]), float(runs["params.init.std"][0])
    assert f"lr={lr:.6g}, std={std:.6g}" in texts
    coloured = [float(text.split(",")[0].removeprefix("lr=")) for text in texts]
    assert coloured == sorted(coloured)  # listed along the colour axis, not in trial order
    assert heatmap_grid(runs, swept).shape == (2, 6)
    table = pd.DataFrame({"optimizer.lr": runs["params.optimizer.lr"], "init.std": runs["params.init.std"],
                          "log10_grad_ratio_first_last": 0.1, "final/val_loss": 0.2})
    assert pivot_tables(table, ["optimizer.lr", "init.std"]) == {}  # a 10 x 10 table of ten cells: none


def test_heatmaps_are_laid_out_in_the_order_of_the_profiles_panels():
    """Names in the sweep's order, numbers in numeric order: norm_compare's heatmap rows read batch,
    layer, none (alphabetical) beside profile panels of none, batch, layer; and the profiles' grid, not
    its transpose (heatmap rows of norms beside profile rows of architectures)."""
    from runner.report.sweep_figures import heatmap_grid

    runs = pd.DataFrame({"params.architecture": ["deep"] * 3 + ["residual"] * 3,
                         "params.architecture.norm": ["none", "batch", "layer"] * 2})
    assert heatmap_grid(runs, ["params.architecture", "params.architecture.norm"]).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert heatmap_grid(runs, ["params.architecture.norm", "params.architecture"]).tolist() == [[0, 1, 2], [3, 4, 5]]
    depths = pd.DataFrame({"params.architecture.depth": ["16", "2", "16", "2"],
                           "params.activation": ["tanh", "tanh", "relu", "relu"]})
    assert heatmap_grid(depths, ["params.architecture.depth", "params.activation"]).tolist() == [[1, 0], [3, 2]]
    # a param only some runs take (exploding_init's init.std, NaN for the Glorot runs): its own row, no error
    stds = pd.DataFrame({"params.architecture.depth": ["2", "4", "2", "4"],
                         "params.init.std": ["1.0", "1.0", float("nan"), float("nan")]})
    assert heatmap_grid(stds, ["params.architecture.depth", "params.init.std"]).tolist() == [[0, 1], [2, 3]]


def test_the_profiles_panels_give_numbers_in_numeric_order_and_names_in_the_sweep_s():
    """As the heatmaps: a grid launched longest first (job 0 the deepest) still has its depth panels read
    2, 4, 16 (they read 16, 4, 2 in the runs' order), and its activations in the order the sweep gave."""
    from runner.report.small_multiples import facet_values

    runs = pd.DataFrame({"params.architecture.depth": ["16", "16", "4", "4", "2", "2"],
                         "params.activation": ["tanh", "relu"] * 3, "params.init.std": ["1e-1", "1"] * 3})
    assert facet_values(runs, "params.architecture.depth") == ["2", "4", "16"]
    assert facet_values(runs, "params.activation") == ["tanh", "relu"]
    assert facet_values(runs, "params.init.std") == ["1e-1", "1"]


def test_heatmaps_name_each_column_and_row_once_and_their_steps_under_each_column(tmp_path, monkeypatch):
    """vanishing_depth's 36 heatmaps: "depth=16" over its column, "init=…, activation=…" beside its row,
    not all three in each of 36 two-line titles; every panel over the sweep's steps (a run that diverged
    stops short, its panel wider than its data) and the steps labelled under each column's lowest panel.
    Runs in rows of 6 (seeds: two in a cell) keep a title each."""
    import numpy as np

    from runner.report import sweep_figures as sf

    figures = []
    monkeypatch.setattr(sf, "save_figure", lambda fig, path, margins, dpi: figures.append(fig) or path)
    runs = pd.DataFrame([{"params.init": init, "params.activation": act, "params.architecture.depth": str(depth)}
                         for init in ("normal", "he_normal") for act in ("sigmoid", "relu") for depth in (16, 2, 4)])
    runs["run_id"] = runs["run_name"] = [f"r{i}" for i in range(len(runs))]
    swept = ["params.init", "params.activation", "params.architecture.depth"]
    grid = sf.heatmap_grid(runs, swept)
    assert sf.heatmap_headers(runs, swept, grid) == (
        ["depth=2", "depth=4", "depth=16"],
        ["init=normal, activation=sigmoid", "init=normal, activation=relu",
         "init=he_normal, activation=sigmoid", "init=he_normal, activation=relu"])

    def history(depth, steps):
        return pd.DataFrame({"step": steps} | {f"grad_norm/grad_norm_l{l:02d}": np.ones(len(steps))
                                               for l in range(1, depth + 2)})
    histories = {r: history(int(d), [0, 5, 10]) for r, d in zip(runs["run_id"], runs["params.architecture.depth"])}
    histories["r0"] = history(16, [0, 5])  # diverged at step 5
    runs["status"] = ["diverged"] + ["finished"] * (len(runs) - 1)
    runs["metrics.diverged_at_step"] = [5.0] + [float("nan")] * (len(runs) - 1)
    sf.plot_heatmaps(runs, histories, swept, tmp_path / "h.png")
    fig = figures.pop()
    fig.canvas.draw()
    panels = np.array(fig.axes[:12]).reshape(4, 3)
    assert [ax.get_title() for ax in panels[0]] == ["depth=2", "depth=4", "depth=16"]
    assert not any(ax.get_title() for ax in panels[1:].flat)
    assert panels[2, 0].get_ylabel() == "init=he_normal,\nactivation=sigmoid\nlayer"
    assert {ax.get_xlim() for ax in panels.flat} == {(0.0, 10.0)}
    assert panels[0, 2].images[0].get_extent()[:2] == [0, 5]  # r0: depth 16, the first row
    assert [t.get_text() for ax in panels.flat for t in ax.texts] == ["diverged at step 5"]
    assert [t.get_text() for t in panels[0, 2].texts] == ["diverged at step 5"]
    shown = [[[t.get_text() for t in ax.get_xticklabels() if t.get_visible()] for ax in row] for row in panels]
    assert shown[-1] == [["0", "10"]] * 3 and all(labels == [] for row in shown[:-1] for labels in row)
    assert [[t.get_text() for t in ax.get_yticklabels()] for ax in panels[0]] == [["1", "3"], ["1", "5"], ["1", "17"]]

    gap = runs.drop(index=runs.index[(runs["params.init"] == "he_normal") & (runs["params.activation"] == "relu")
                                     & (runs["params.architecture.depth"] == "2")]).reset_index(drop=True)
    sf.plot_heatmaps(gap, histories, swept, tmp_path / "h.png")  # the last row lacks its depth=2 panel
    gapped = np.array(figures.pop().axes[:12]).reshape(4, 3)
    assert not gapped[3, 0].axison and gapped[3, 1].get_ylabel() == "init=he_normal,\nactivation=relu\nlayer"

    twice = pd.concat([runs, runs], ignore_index=True)  # two runs a cell (an axis not swept): rows of 6
    twice["run_id"] = twice["run_name"] = [f"r{i}" for i in range(len(twice))]
    assert sf.heatmap_grid(twice, swept).shape == (4, 6) and sf.heatmap_headers(twice, swept, sf.heatmap_grid(twice, swept)) is None
    sf.plot_heatmaps(twice, {r: history(2, [0, 5, 10]) for r in twice["run_id"]}, swept, tmp_path / "h.png")
    titled = [ax.get_title() for ax in figures.pop().axes[:24]]
    assert titled[0] == "init=normal, activation=sigmoid,\ndepth=16" and all(titled)


def test_a_column_of_panels_over_the_same_x_range_says_its_ticks_once_at_its_foot(tmp_path, monkeypatch):
    """Profiles of every depth in each panel: the layer ticks are labelled under each column only; a panel
    over other layers than the one below keeps its own."""
    import numpy as np

    from runner.report import small_multiples as sm
    from runner.report.sweep_figures import plot_profiles

    figures = []
    monkeypatch.setattr(sm, "save_figure", lambda fig, path, margins: figures.append(fig) or path)

    def history(depth):
        return pd.DataFrame({"step": [0, 5]} | {f"grad_norm/grad_norm_l{l:02d}": [1.0, 0.5] for l in range(1, depth + 2)})

    def drawn(depths):
        runs = pd.DataFrame({"params.activation": ["tanh", "tanh", "relu", "relu"], "params.init": ["a", "b"] * 2,
                             "params.architecture.depth": depths})
        runs["run_id"] = runs["run_name"] = [f"r{i}" for i in range(4)]
        plot_profiles(runs, {r: history(int(d)) for r, d in zip(runs["run_id"], depths)},
                      ["params.activation", "params.init"], tmp_path / "p.png")
        fig = figures.pop()
        fig.canvas.draw()
        return np.array([bool([t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()])
                         for ax in fig.axes[:4]]).reshape(2, 2)

    assert drawn(["4", "4", "4", "4"]).tolist() == [[False, False], [True, True]]
    assert drawn(["4", "4", "8", "4"]).tolist() == [[True, False], [True, True]]  # 1..5 above 1..9


def test_a_grid_axis_of_many_values_keeps_its_panels():
    """The 1000-job sweep's 40 sigma_w2 x 25 depths: a panel per depth, lines coloured by sigma_w2 (each
    depth is 40 runs: not a search's samples, whatever its number of values)."""
    from runner.report.small_multiples import layout

    runs = pd.DataFrame({"params.init.sigma_w2": [f"{0.5 + 0.1 * i:.1f}" for i in range(40)] * 25,
                         "params.architecture.depth": [str(d) for d in range(2, 52, 2) for _ in range(40)]})
    assert layout(runs, ["params.init.sigma_w2", "params.architecture.depth"]) == \
        ("params.init.sigma_w2", ["params.architecture.depth"], [])


def test_a_report_removes_what_an_earlier_one_left_in_its_folder_and_only_that(tmp_path):
    """A figure or pivot the new report leaves out (heatmaps above 64 runs, pivots of a search) stayed beside
    it, telling of other runs; a file of the user's in a folder given with --out stays."""
    from pathlib import Path

    from runner.report.write import REPORT_FIGURES, _clear, _figure_tasks

    stale = ["grad_heatmaps.png", "pivot_final_val_loss.csv", "pivots.md", "report.html", "summary.csv"]
    for name in stale + ["notes.png", "pivot.txt"]:
        (tmp_path / name).write_text("x")
    _clear(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.png", "pivot.txt"]
    runs = pd.DataFrame({"run_id": ["a"], "params.x": ["1"]})
    history = pd.DataFrame({"delta_norm/delta_norm_l1": [1.0], "act_std/act_std_l1": [1.0],
                            "stream_length/stream_length_b1": [1.0], "branch_ratio/branch_ratio_b1": [1.0]})
    artifacts = {"history.csv": {"a": history}, "distributions.npz": {"a": {}}, "jacobian.npz": {"a": 1},
                 "theory.csv": {"a": 1}}
    drawn = {next(arg for arg in task if isinstance(arg, Path)).name for task in _figure_tasks(runs, artifacts, [], tmp_path)}
    assert drawn <= set(REPORT_FIGURES) and len(drawn) == len(REPORT_FIGURES)  # every figure it may draw is known


def test_what_does_not_change_a_run_is_not_an_axis_of_a_resumed_sweep_s_report():
    """``resume=true``: the reused runs record resume=False, the new ones True; the report faceted its
    profiles by it (resume=False / resume=True panels) where the sweep varied the activation."""
    from runner.report.axes import swept_columns

    runs = pd.DataFrame({"params.activation": ["tanh", "relu", "tanh", "relu"],
                         "params.architecture.depth": ["2", "2", "8", "8"],
                         "params.resume": ["False", "False", "True", "True"],
                         "params.tracking.report": ["auto", "never", "auto", "auto"],
                         "params.trainer.max_memory_fraction": ["0.5", "0.5", "0.8", "0.8"],
                         "params.trainer.epochs": ["3", "3", "3", "3"]})
    assert swept_columns(runs) == ["params.activation", "params.architecture.depth"]


def test_the_verdicts_say_what_the_numbers_say():
    import math

    from runner.report.tables import verdicts

    table = pd.DataFrame({"run": list("abcd"), "activation": ["sigmoid", "sigmoid", "relu", "relu"],
                          "architecture.depth": ["2", "16", "2", "16"],
                          "log10_grad_ratio_first_last": [-0.9, -13.4, 0.2, 0.4]})
    assert verdicts(table, ["architecture.depth", "activation"]) == [
        "activation=sigmoid: the first layer's gradient is 10^-13.4 of the last layer's at step 0 at depth=16: "
        "it vanishes (depth=2: 10^-0.9; depth=16: 10^-13.4).",
        "activation=relu: the first layer's gradient is 10^0.4 of the last layer's at step 0 at depth=16: "
        "it holds within a decade (depth=2: 10^0.2; depth=16: 10^0.4)."]
    # the runs that diverged, by panel (exploding_init's verdicts said only "holds within a decade")
    table = table.assign(diverged=[False, False, False, True], diverged_at_step=[math.nan] * 3 + [3.0])
    assert verdicts(table, ["architecture.depth", "activation"])[1].endswith(
        "(depth=2: 10^0.2; depth=16: 10^0.4). 1 of 2 runs diverged (depth=16 at step 3).")
    assert verdicts(table, ["activation"])[1].endswith("1 of 2 runs diverged (d at step 3).")
    # what training made of it (seed003_remedies: the step-0 verdict of sigmoid is the same for sgd and adam,
    # which alone trains it), along the numeric axis or of a panel's one run; nothing of a diverged run
    scored = table.assign(**{"final/val_accuracy": [1.0, 0.46, 1.0, math.nan]})
    assert verdicts(scored, ["architecture.depth", "activation"])[0].endswith(
        "(depth=2: 10^-0.9; depth=16: 10^-13.4). At the end, val accuracy: depth=2: 1; depth=16: 0.46.")
    remedies = pd.DataFrame({"run": ["sgd", "adam"], "optimizer": ["sgd", "adam"],
                             "log10_grad_ratio_first_last": [-6.3, -6.3], "final/val_accuracy": [0.46, 0.9]})
    assert [v.split(": it vanishes.")[1] for v in verdicts(remedies, ["optimizer"])] == [
        " At the end, val accuracy 0.46.", " At the end, val accuracy 0.9."]
    alone = table.iloc[3:].assign(alpha="one")
    assert verdicts(alone.assign(**{"final/val_accuracy": math.nan}), ["alpha"]) == verdicts(alone, ["alpha"])
    assert verdicts(alone, ["alpha"]) == ["alpha=one: the first layer's gradient is 10^0.4 of the last layer's at step 0: "
                                          "it holds within a decade. It diverged at step 3."]  # not "1 of 1 runs", "in d"


def _stuck_in_a_child(parent: int, path):
    """A figure task whose forked child never comes back (as a child that inherited a held lock would not)."""
    import time

    if os.getpid() != parent:
        time.sleep(60)
    path.write_text("drawn")
    return path


def test_a_figure_stuck_in_its_process_is_drawn_in_the_report_s_own(tmp_path, caplog):
    from runner.report.write import draw_figures

    tasks = [(_stuck_in_a_child, os.getpid(), tmp_path / f"figure{i}.png") for i in range(3)]
    assert draw_figures(tasks, timeout=2) == [tmp_path / f"figure{i}.png" for i in range(3)]
    assert all(path.read_text() == "drawn" for _, _, path in tasks)
    assert "did not come back from its process within 2 s: the 3 left are drawn in this process" in caplog.text


def _signals_here(_):
    import signal

    return (os.getpid(), signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT),
            signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, []))


def test_figure_processes_end_at_sigterm_whatever_handler_their_parent_has():
    """A sweep's launching process turns SIGTERM into an exception (``interrupted_by_sigterm``).  Its
    forked figure workers must not keep that handler: a SIGTERM arriving just before a worker blocks for
    its next task was then lost, and the pool's terminate waited for ever (2 sweeps of 6 hung here)."""
    import signal

    from runner.processes import interrupted_by_sigterm
    from runner.report.write import draw_figures

    with interrupted_by_sigterm():
        seen = draw_figures([(_signals_here, i) for i in range(4)], timeout=30)
        assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the parent's mask restored
    children = [s for s in seen if s[0] != os.getpid()]
    assert children, "no figure was drawn in a forked process"
    assert {s[1:] for s in children} == {(signal.SIG_DFL, signal.SIG_IGN, False)}


def test_a_history_is_read_with_the_columns_the_report_draws_and_only_those(tmp_path):
    """A deep net's history.csv has weights, updates, biases and saturation per layer too: three fifths of
    its columns, which no report figure draws, are not parsed; every figure the full history allows is
    still drawn from what is read."""
    from runner.report.readers import READERS
    from runner.report.write import _figure_tasks

    families = ["grad_norm", "delta_norm", "act_std", "weight_norm", "update_ratio", "saturation", "act_mean"]
    columns = {"step": [0, 1], "epoch": [0, 0], "train/loss": [1.0, 0.5], "val/loss": [1.1, float("nan")],
               "grad_norm/global": [2.0, 1.0]}
    columns |= {f"{family}/{family}_l{layer:02d}": [1.0, 0.5] for family in families for layer in (1, 2)}
    columns |= {f"{family}/{family}_b{block:02d}": [1.0, 2.0] for family in ("stream_length", "branch_ratio")
                for block in (1, 2)}
    pd.DataFrame(columns).to_csv(tmp_path / "history.csv", index=False)
    history = READERS["history.csv"](tmp_path / "history.csv")
    assert not [c for c in history.columns if c.split("/")[0] in ("weight_norm", "update_ratio", "saturation",
                                                                      "act_mean", "epoch")]
    pd.testing.assert_frame_equal(history, pd.read_csv(tmp_path / "history.csv")[history.columns])
    runs = pd.DataFrame({"run_id": ["r"], "params.architecture.depth": ["2"]})
    artifacts = {"history.csv": {"r": history}, "distributions.npz": {}, "jacobian.npz": {}, "theory.csv": {}}
    drawn = {task[4].name for task in _figure_tasks(runs, artifacts, [], tmp_path) if len(task) > 4}
    assert drawn >= {"grad_profile.png", "loss_curves.png", "grad_heatmaps.png", "delta_profile.png",
                     "act_std_profile.png", "stream_profile.png", "branch_profile.png"}


def test_a_sweep_of_more_runs_than_heatmap_panels_leaves_the_heatmaps_out(tmp_path):
    from runner.report.write import MAX_HEATMAPS, _figure_tasks
    from runner.report.sweep_figures import plot_heatmaps

    def drawn_for(n_runs):
        runs = pd.DataFrame({"run_id": [f"r{i}" for i in range(n_runs)], "params.architecture.depth": range(n_runs)})
        history = pd.DataFrame({"step": [0, 1], "grad_norm/grad_norm_l1": [1.0, 0.5]})
        artifacts = {"history.csv": {f"r{i}": history for i in range(n_runs)}, "distributions.npz": {},
                     "jacobian.npz": {}, "theory.csv": {}}
        return [task[0] for task in _figure_tasks(runs, artifacts, ["params.architecture.depth"], tmp_path)]

    assert plot_heatmaps in drawn_for(MAX_HEATMAPS)
    assert plot_heatmaps not in drawn_for(MAX_HEATMAPS + 1) and len(drawn_for(MAX_HEATMAPS + 1)) >= 2


def test_the_legend_fits_its_figure_and_is_left_out_where_the_titles_say_it(tmp_path, monkeypatch):
    from runner.report import small_multiples as sm

    figures = []
    monkeypatch.setattr(sm, "save_figure", lambda fig, path, margins: figures.append(fig) or path)

    def draw(ax, items, colour, label):
        ax.plot([1, 2, 3], [1.0, 10.0, 100.0], color=colour, label=label)

    combos = [(a, n, o) for a in ("deep", "residual") for n in ("none", "batch") for o in ("a", "b")]
    runs = pd.DataFrame({"run_id": [f"r{i}" for i in range(8)], "run_name": [f"run{i}" for i in range(8)],
                         "params.architecture": [a for a, _, _ in combos],
                         "params.architecture.norm": [n for _, n, _ in combos],
                         "params.optimizer": [f"an_optimizer_with_a_long_name_{o}" * 2 for _, _, o in combos]})
    data = {f"r{i}": i for i in range(8)}
    swept = ["params.architecture", "params.architecture.norm", "params.optimizer"]
    sm.small_multiples(runs, data, swept, tmp_path / "a.png", draw, "layer", "norm")
    fig = figures.pop()
    fig.canvas.draw()
    (legend,) = fig.legends
    box, figure_box = legend.get_window_extent(), fig.bbox
    assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1  # the labels are 70 characters: all inside (cut before)
    # each curve alone in its panel (two swept axes, both facets): its label would repeat the title
    one_optimizer = runs.iloc[::2].reset_index(drop=True)
    sm.small_multiples(one_optimizer, data, swept[:2], tmp_path / "b.png", draw, "layer", "norm")
    assert not figures.pop().legends


def test_a_colour_axis_of_more_values_than_a_legend_lists_gets_a_colour_bar(tmp_path, monkeypatch):
    """A 40-value sigma_w2 sweep: no legend of 40 entries (none at all, before), a colour bar that names
    the axis and spans its values, inside the figure."""
    from runner.report import small_multiples as sm

    figures = []
    monkeypatch.setattr(sm, "save_figure", lambda fig, path, margins: figures.append(fig) or path)
    sigmas = [round(0.5 + 0.1 * i, 1) for i in range(40)]
    runs = pd.DataFrame({"run_id": [f"r{i}" for i in range(80)], "run_name": [f"run{i}" for i in range(80)],
                         "params.init.sigma_w2": [str(s) for s in sigmas] * 2,
                         "params.architecture.depth": ["2"] * 40 + ["4"] * 40})
    sm.small_multiples(runs, {f"r{i}": i for i in range(80)}, ["params.init.sigma_w2", "params.architecture.depth"],
                       tmp_path / "a.png", lambda ax, items, colour, label: ax.plot([1, 2], [1.0, 2.0], color=colour,
                                                                                 label=label), "layer", "norm")
    fig = figures.pop()
    fig.canvas.draw()
    assert not fig.legends
    (bar,) = [ax for ax in fig.axes if ax.get_ylabel() == "sigma_w2"]
    labels = [t.get_text() for t in bar.get_yticklabels()]
    assert labels[0] == "0.5" and labels[-1] == "4.4"
    assert fig.bbox.x0 <= bar.get_window_extent().x0 and bar.get_window_extent().x1 <= fig.bbox.x1


def test_a_sweep_with_residual_nets_gets_per_block_profiles(tmp_path):
    from runner.report.write import _figure_tasks, draw_figures

    runs = pd.DataFrame({"run_id": ["plain", "res"], "run_name": ["plain", "res"],
                         "params.architecture": ["deep", "residual"]})
    plain = pd.DataFrame({"step": [0, 5], "grad_norm/grad_norm_l01": [1.0, 0.5], "grad_norm/grad_norm_l02": [2.0, 1.0]})
    residual = plain.assign(**{"stream_length/stream_length_b01": [1.0, 2.0], "stream_length/stream_length_b02": [2.0, 4.0],
                               "branch_ratio/branch_ratio_b01": [0.5, 0.4], "branch_ratio/branch_ratio_b02": [0.3, 0.2]})
    artifacts = {"history.csv": {"plain": plain, "res": residual}, "distributions.npz": {}, "jacobian.npz": {},
                 "theory.csv": {}}
    tasks = [t for t in _figure_tasks(runs, artifacts, ["params.architecture"], tmp_path) if t[-1] == "b"]
    assert [t[4].name for t in tasks] == ["stream_profile.png", "branch_profile.png"]
    for path in draw_figures(tasks, timeout=60):
        assert_drawn(path)
    plain_only = {"history.csv": {"plain": plain, "res": plain}} | {k: v for k, v in artifacts.items() if k != "history.csv"}
    assert not [t for t in _figure_tasks(runs, plain_only, ["params.architecture"], tmp_path) if t[-1] == "b"]


def test_a_run_that_diverged_ends_in_an_x_and_a_short_run_s_own_figures_mark_their_points(tmp_path, monkeypatch):
    """exploding_init: runs that diverged at step 1 have one loss a log axis shows (the next is inf, or
    1e169), which a line does not draw: the report marks it with an x (the y label says so), and a
    run's own figures mark every point of a short history."""
    import numpy as np

    from runner.figures import run_figures
    from runner.report import small_multiples as sm
    from runner.report.sweep_figures import plot_losses

    figures = []
    monkeypatch.setattr(sm, "save_figure", lambda fig, path, margins: figures.append(fig) or path)
    monkeypatch.setattr(run_figures, "save_figure", lambda fig, path, margins: figures.append(fig) or path)
    runs = pd.DataFrame({"run_id": ["ok", "blew"], "run_name": ["ok", "blew"], "status": ["finished", "diverged"],
                         "params.init.std": ["0.1", "1.0"]})
    ok = pd.DataFrame({"step": [0, 1, 2], "train/loss": [1.0, 0.5, 0.25], "grad_norm/grad_norm_l01": [1.0, 1.0, 1.0]})
    blew = pd.DataFrame({"step": [0, 1], "train/loss": [3.9e17, 2e169], "grad_norm/grad_norm_l01": [4e17, np.nan]})
    plot_losses(runs, {"ok": ok, "blew": blew}, ["params.init.std"], tmp_path / "l.png")
    (ax,) = figures.pop().axes
    crosses = [line for line in ax.lines if line.get_marker() == "x"]
    assert len(crosses) == 1 and list(crosses[0].get_xdata()) == [0.0] and list(crosses[0].get_ydata()) == [3.9e17]
    assert ax.get_ylabel().endswith("; x: diverged)")
    plot_losses(runs.assign(**{"params.activation": ["tanh", "relu"]}), {"ok": ok, "blew": blew},
                ["params.activation"], tmp_path / "l.png")  # a panel each: the one that blew up spans the steps too
    panels = figures.pop().axes
    assert len(panels) == 2 and {ax.get_xlim() for ax in panels} == {(-0.04, 2.04)}
    plot_losses(runs.assign(status="finished"), {"ok": ok, "blew": blew}, ["params.init.std"], tmp_path / "l.png")
    assert "diverged" not in figures.pop().axes[0].get_ylabel()

    run_figures.plot_run(blew, tmp_path / "plots", "blew")
    loss, norms, _ = figures[-3:]
    assert {line.get_marker() for fig in (loss, norms) for line in fig.axes[0].lines} == {"."}


def test_a_panel_with_nothing_to_draw_has_no_axis_ticks(tmp_path, monkeypatch):
    """The plain net's panel of a per-block profile says "no stream_length" and shows no ticks: a log axis
    of 10^0..10^1 and a layer axis of 0.0..1.0 there read as data (they did)."""
    from runner.report import small_multiples as sm
    from runner.report.sweep_figures import plot_profiles

    figures = []
    monkeypatch.setattr(sm, "save_figure", lambda fig, path, margins: figures.append(fig) or path)
    runs = pd.DataFrame({"run_id": ["plain", "res"], "run_name": ["plain", "res"],
                         "params.architecture": ["deep", "residual"]})
    plain = pd.DataFrame({"step": [0, 5], "grad_norm/grad_norm_l01": [1.0, 0.5]})
    residual = plain.assign(**{"stream_length/stream_length_b01": [1.0, 2.0],
                               "stream_length/stream_length_b02": [2.0, 40.0]})
    plot_profiles(runs, {"plain": plain, "res": residual}, ["params.architecture"], tmp_path / "s.png",
                  "stream_length", "b")
    fig = figures.pop()
    fig.canvas.draw()
    empty, drawn = fig.axes[:2]
    assert [t.get_text() for t in empty.texts] == ["no stream_length"]

    def labels(ax):
        return [t.get_text() for axis in (ax.xaxis, ax.yaxis) for minor in (False, True)
                for t in axis.get_ticklabels(minor=minor) if t.get_visible() and t.get_text()]

    assert not labels(empty)
    assert {"1", "10", "20"} <= set(labels(drawn))  # the residual net's panel keeps its own (1 to 40: numbers)


def test_log_axes_are_labelled_in_plain_text_as_matplotlib_would_in_mathtext(tmp_path, monkeypatch):
    """The panels' log axes label every tick matplotlib's own formatter labels, in plain text (its mathtext
    parser took a fifth of a report's drawing time), and within two decades each minor tick (2 and 5),
    where matplotlib labels some only (a panel of 0.6 decade showed one label), as numbers (0.002, 0.5)."""
    import re

    from runner.figures.style import power_of_ten
    from runner.report import small_multiples as sm

    # by hand: 1e-14 is 10 to the -14; 0.002 is 2 x 10^-3; nothing for what a log axis cannot hold
    assert [power_of_ten(v) for v in (1e-14, 1.0, 10.0, 0.002, 5e-7, 2000.0)] == \
        ["10⁻¹⁴", "10⁰", "10¹", "2×10⁻³", "5×10⁻⁷", "2×10³"]
    assert power_of_ten(0.0) == power_of_ten(-1.0) == power_of_ten(float("nan")) == ""
    # within two decades, numbers from 0.001 to 1000: 0.9 and 0.8 read at once, 9×10⁻¹ and 8×10⁻¹ do not
    assert [power_of_ten(v, decimal=True) for v in (0.9, 0.002, 2000.0, 1.0, 5e-7, 2e4)] == \
        ["0.9", "0.002", "2000", "1", "5×10⁻⁷", "2×10⁴"]
    figures = []
    monkeypatch.setattr(sm, "save_figure", lambda fig, path, margins: figures.append(fig) or path)
    runs = pd.DataFrame({"run_id": list("abcd"), "run_name": list("abcd"), "params.architecture.depth": list("2468")})
    # fourteen decades, under one decade, 0.6 of a decade (minor labels thinned), 0.2 (every minor one)
    spans = {"a": [1e-14, 1e-7, 1.0], "b": [0.002, 0.003, 0.005], "c": [0.25, 0.5, 0.95], "d": [0.31, 0.4, 0.49]}

    def draw(ax, items, colour, label):
        ax.plot([1, 2, 3], items[0], color=colour, label=label)

    ours_labels = sm.plain_log_labels

    def labels(run: str, plain: bool) -> dict[float, str]:
        monkeypatch.setattr(sm, "plain_log_labels", ours_labels if plain else lambda axis, every_minor: None)
        sm.small_multiples(runs[runs.run_id == run], spans, ["params.architecture.depth"], tmp_path / "p.png",
                           draw, "layer", "norm")
        fig = figures.pop()
        fig.canvas.draw()
        axis = fig.axes[0].yaxis
        low, high = axis.get_view_interval()
        ticks = [t for t in axis.get_major_ticks() + axis.get_minor_ticks() if low <= t.get_loc() <= high]
        sm.plt.close(fig)
        return {t.get_loc(): t.label1.get_text() for t in ticks}

    for run in spans:
        theirs, ours = labels(run, plain=False), labels(run, plain=True)
        assert set(ours) == set(theirs)  # the same ticks
        theirs = {value: text for value, text in theirs.items() if text}
        assert set(theirs) <= {value for value, text in ours.items() if text}, (run, theirs, ours)
        if run != "a":  # within two decades: every tick labelled
            assert all(ours.values()), (run, ours)
        ours = {value: text for value, text in ours.items() if text}
        for value, text in ours.items():
            assert "$" not in text and text == power_of_ten(value, decimal=run != "a"), (run, text)
        for value in theirs:  # the same numbers: mathtext 10^{-14}, 2\times10^{-3} read back
            found = re.fullmatch(r"\$\\mathdefault\{(?:([\d.]+)\\times)?10\^\{(\S+?)\}\}\$",
                                 theirs[value].replace("\N{MINUS SIGN}", "-"))
            assert found, (run, theirs[value])
            mantissa, exponent = found.groups()
            assert float(mantissa or 1) * 10.0 ** int(exponent) == pytest.approx(value), (theirs[value], ours[value])


def test_a_frozen_heap_is_thawed_by_its_outermost_block_only():
    import gc

    from runner.processes import heap_frozen

    gc.unfreeze()  # (a first import in this process may have frozen what it made: imports_unscanned)
    with heap_frozen():
        outer = gc.get_freeze_count()
        with heap_frozen():
            pass
        assert gc.get_freeze_count() >= outer > 0  # the inner block's end thaws nothing
    assert gc.get_freeze_count() == 0


def test_imports_are_made_with_the_collector_paused_and_what_they_made_frozen_out(tmp_path, monkeypatch):
    import gc
    import sys

    from runner.processes import imports_unscanned

    (tmp_path / "bpl_fresh_module.py").write_text(
        "import gc\nCOLLECTING = gc.isenabled()\nOBJECTS = [[i] for i in range(1000)]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    gc.unfreeze()
    assert gc.isenabled()
    with imports_unscanned():
        import bpl_fresh_module
    assert not bpl_fresh_module.COLLECTING and gc.isenabled()
    frozen = gc.get_freeze_count()
    assert frozen >= 1000  # the module's objects are out of the collector's passes
    with imports_unscanned():
        import bpl_fresh_module  # noqa: F811 (loaded already: nothing new is frozen)
    assert gc.get_freeze_count() == frozen
    gc.disable()
    try:
        with pytest.raises(KeyboardInterrupt), imports_unscanned():
            raise KeyboardInterrupt  # as a Ctrl-C during an import
        assert not gc.isenabled()  # left as it was found: a block never turns the collector on
    finally:
        gc.enable()
        gc.unfreeze()
        sys.modules.pop("bpl_fresh_module", None)


def test_a_table_of_runs_logged_without_the_log10_summary_reads_it_as_a_run_would_log_it():
    from runner.report.tables import summary_table
    runs = pd.DataFrame({"run_name": ["a", "b", "c"], "params.init": ["zeros", "normal", "normal"],
                         "status": ["finished"] * 3, "metrics.grad_ratio_first_last": [0.0, 0.01, float("nan")]})
    table = summary_table(runs, ["params.init"])
    # 0 (no gradient reaches layer 1) has no log10, as in the run's own metric; 0.01 is -2
    assert table["log10_grad_ratio_first_last"].tolist()[1] == pytest.approx(-2.0)
    assert table["log10_grad_ratio_first_last"].isna().tolist() == [True, False, True]

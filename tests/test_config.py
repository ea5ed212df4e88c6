"""Every option of every config group composes and builds; the groups match the registries."""

import pickle

import numpy as np
import pytest
from backprop_core import ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS
from runner.config.errors import ConfigError
from runner.run.build import build
from runner.datasets import DATASETS

from omegaconf import OmegaConf
from runner.config.keys import schema_option

from conftest import CONF, compose_cfg

# options that need values from the user
REQUIRED = {
    ("init", "explicit"): ["architecture=mlp", "architecture.hidden_sizes=[2]",
                           "init.weights=[[[0.1,0.2],[0.3,0.4]],[[0.5],[0.6]]]"],
    ("dataset", "inline"): ["dataset.X=[[0.0,1.0],[1.0,0.0]]", "dataset.y=[[1.0],[0.0]]"],
}
# the output activation that a loss needs for each dataset is the loss's own; mse on moons is fine


def options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_groups_match_the_registries():
    hidden = {name for name, cls in ACTIVATIONS.items() if cls.elementwise}  # softmax is output-only
    assert set(options("activation")) == hidden
    assert set(options("loss")) == set(LOSSES)
    assert set(options("init")) == set(INITIALIZERS)
    assert set(options("optimizer")) == set(OPTIMIZERS)
    assert set(options("dataset")) == set(DATASETS)
    assert set(options("architecture")) == {"mlp", "deep", "residual"}
    assert set(options("tracking")) == {"mlflow", "none"}


GROUP_OPTIONS = [(group, option) for group in ("architecture", "activation", "loss", "init", "optimizer",
                                                 "dataset", "trainer", "tracking") for option in options(group)]


@pytest.mark.parametrize("group,option", GROUP_OPTIONS)
def test_every_option_composes_and_builds(group, option):
    cfg = compose_cfg([f"{group}={option}", "trainer.epochs=2", *REQUIRED.get((group, option), [])])
    assert schema_option(OmegaConf.get_type(cfg[group])) == option or group == "tracking"  # its own schema
    assert cfg[group].get("name", option) == option
    shipped = pickle.loads(pickle.dumps(cfg))  # plain pickle, as the launching process hands a job to a worker
    assert shipped == cfg and OmegaConf.get_type(shipped[group]) is OmegaConf.get_type(cfg[group])
    exp = build(cfg)
    assert exp.net.sizes[0] == exp.data.n_features
    assert exp.Y_train.shape == (len(exp.data.X_train), exp.net.sizes[-1])
    assert np.all(np.isfinite(exp.net.params))


def test_deep_and_mlp_shapes():
    exp = build(compose_cfg(["architecture=deep", "architecture.depth=3", "architecture.width=5"]))
    assert exp.net.sizes == (2, 5, 5, 5, 1)
    exp = build(compose_cfg(["architecture=mlp", "architecture.hidden_sizes=[7,3]", "loss=cross_entropy"]))
    assert exp.net.sizes == (2, 7, 3, 2)


def test_one_seed_gives_the_same_build_and_another_does_not():
    a, b, c = (build(compose_cfg([f"seed={s}"])) for s in (3, 3, 4))
    assert np.array_equal(a.net.params, b.net.params) and np.array_equal(a.data.X_train, b.data.X_train)
    assert not np.array_equal(a.net.params, c.net.params)


def test_a_sweep_s_checks_share_a_dataset_only_where_they_would_generate_the_same():
    """Within ``datasets_shared`` (a sweep's checks) a job gets the dataset of the job before where its
    dataset settings and seed are the same; another seed or size generates its own, equal to what a
    build outside would give; outside, no two builds share one."""
    from runner.run.build import datasets_shared

    with datasets_shared():
        a, b = (build(compose_cfg(["seed=3", f"architecture.depth={d}"])) for d in (2, 5))
        c = build(compose_cfg(["seed=4"]))
        d = build(compose_cfg(["seed=4", "dataset.n_samples=150"]))
        e = build(compose_cfg(["seed=4", "dataset.n_samples=150", "trainer.max_memory_fraction=0.25"]))
    assert b.data is a.data and c.data is not a.data and d.data is not c.data
    assert e.data is not d.data  # checked against another memory budget
    alone = build(compose_cfg(["seed=4"]))
    assert alone.data is not c.data and np.array_equal(alone.data.X_train, c.data.X_train)
    assert len(d.data.X_train) != len(c.data.X_train)
    assert build(compose_cfg(["seed=3"])).data is not build(compose_cfg(["seed=3"])).data


def test_the_memory_available_is_read_once_a_second(monkeypatch):
    """A thousand jobs' checks read it once, not a thousand times (psutil reads /proc/meminfo each time)."""
    from types import SimpleNamespace

    import psutil

    from runner.run import memory

    readings = []
    monkeypatch.setattr(memory, "_reading", (-np.inf, 0))
    monkeypatch.setattr(psutil, "virtual_memory", lambda: readings.append(1) or SimpleNamespace(available=2 ** 30))
    assert [memory.available_memory() for _ in range(3)] == [2 ** 30] * 3 and len(readings) == 1
    monkeypatch.setattr(memory, "_reading", (memory._reading[0] - memory.READING_SECONDS - 0.1, 0))
    assert memory.available_memory() == 2 ** 30 and len(readings) == 2


@pytest.mark.parametrize("overrides,message", [
    (["optimizer.lr=0"], "optimizer.lr=0.0: must be > 0"),
    (["optimizer.lr=-1"], "optimizer.lr=-1.0: must be > 0"),
    (["architecture.width=0"], "architecture.width=0: must be >= 1"),
    (["architecture.depth=0"], "architecture.depth=0: must be >= 1"),
    (["architecture=mlp", "architecture.hidden_sizes=[4,0]"], r"architecture.hidden_sizes\[1\]=0: must be >= 1"),
    (["trainer.batch_size=0"], "trainer.batch_size=0: must be an integer >= 1"),
    (["trainer.epochs=0"], "trainer.epochs=0: must be an integer >= 1"),
    (["trainer.log_every=0"], "trainer.log_every=0: must be an integer >= 1"),
    (["trainer.clip_grad_norm=-1"], "trainer.clip_grad_norm=-1.0: must be > 0"),
    (["trainer.clip_grad_value=-0.5"], "trainer.clip_grad_value=-0.5: must be > 0"),
    (["dataset=teacher", "loss=bce", "dataset.output_activation=identity"], "loss=bce needs targets in \\[0, 1\\]"),
    (["dataset=spirals", "loss=cross_entropy", "architecture.output_size=2"], "architecture.output_size=2: dataset 'spirals' has 3 classes: 3 output unit\\(s\\)"),
    (["loss=cross_entropy", "architecture.output_size=1"], "loss.output_activation=softmax and 1 output unit"),
    (["loss=bce", "loss.output_activation=tanh"], "loss 'bce' needs outputs in \\(0, 1\\)"),
    (["init=explicit", "init.weights=[[[1.0]]]"], "init.weights: gives 1 layers, the architecture has 6"),
    (["architecture=mlp", "architecture.hidden_sizes=[2]", "init=explicit", "init.weights=[[[1.0,2.0]],[[1.0],[2.0]]]"],
     r"init.weights\[0\]: has shape \(1, 2\), layer 1 needs \(2, 2\) = \(fan_in, fan_out\)"),
    (["dataset=inline", "dataset.X=[[1.0,nan]]", "dataset.y=[[1.0]]"], "dataset.X: contains NaN"),
    (["dataset=inline", "dataset.X=[[1.0,x]]", "dataset.y=[[1.0]]"], "dataset.X: must hold numbers only"),
    (["dataset=inline", "dataset.X=[[1.0,2.0],[3.0]]", "dataset.y=[[1.0],[0.0]]"], "dataset.X: has rows of lengths"),
    (["architecture.input_size=3"], "architecture.input_size=3: does not match dataset 'moons', which has 2 features"),
    (["init.bias_init=zeros", "init.bias_std=0.5"], "init.bias_std=0.5: not used by init.bias_init=zeros"),
    (["activation.name=softmax"], "activation='softmax' is an output activation only"),
    (["optimizer.name=lion"], "optimizer.name='lion': unknown; valid names: adam, momentum, rmsprop, sgd"),
    (["dataset.n_samples=2"], "dataset.n_samples=2: must be an integer >= 4"),
])
def test_bad_values_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build(compose_cfg(overrides))


def test_config_hash_ignores_what_does_not_decide_the_result():
    from runner.config.recorded import config_hash

    base = config_hash(compose_cfg([]))
    same = ["tracking.detail=full", "tracking.experiment=x", "resume=true", "trainer.max_memory_fraction=0.9"]
    assert config_hash(compose_cfg(same)) == base and config_hash(compose_cfg(["tracking=none"])) == base
    for different in ("optimizer.lr=0.2", "seed=1", "trainer.threads=2", "init=he_normal"):
        assert config_hash(compose_cfg([different])) != base, different


def test_a_description_lists_what_a_run_changes_from_what_it_describes():
    from runner.config.recorded import description_of

    cfg = compose_cfg([])  # the default config's description: a sigmoid net on two moons
    text = cfg.description
    assert "sigmoid" in text and description_of(cfg) == description_of(cfg, {}) == text
    # what does not change the computation, and the preset's own sweep values, are not changes
    assert description_of(cfg, {"tracking": "none", "tracking.experiment": "x", "resume": "true",
                                 "experiment": "vanishing_depth"}) == text
    sweep = {"architecture.depth": "2,4,8,16", "init.sigma_w2": "interval(0.5,4)", "activation": "range(1,3)"}
    assert description_of(cfg, {"architecture.depth": "4", "init.sigma_w2": "1.7"}, sweep) == text
    assert description_of(cfg, {"architecture.depth": "2,4,8,16"}, sweep) == text  # a parent run: as typed
    changed = description_of(cfg, {"activation": "relu", "architecture.depth": "32", "seed": "2"}, sweep)
    assert changed == text + "\n\n*Changed from what this describes:* activation=relu, architecture.depth=32, seed=2"
    # a description given with the run is its own; a long list of changes is cut, never the note
    assert description_of(compose_cfg(["description=mine"]), {"description": "mine", "activation": "relu"}) == "mine"
    long = description_of(cfg, {f"+k{i}": "v" * 50 for i in range(100)})
    assert long.startswith(text) and long.endswith("…") and len(long) < len(text) + 2100


def test_a_preset_can_sit_on_the_critical_line():
    from backprop_core.theory import critical_sigma_w2

    cfg = compose_cfg(["experiment=pennington2017", "activation=tanh"])
    assert cfg.init.sigma_w2 == pytest.approx(critical_sigma_w2("tanh", 1e-4), rel=1e-12)
    assert compose_cfg(["experiment=pennington2017", "activation=relu"]).init.sigma_w2 == pytest.approx(2.0, abs=1e-9)


def test_a_run_name_shortens_only_the_noise_of_a_number():
    """``range()`` sums its steps (0.15000000000000002: named 0.15); a number typed as 1.0 stays 1.0 (it was
    named 1, and the exploding_init study's runs lost the names its test reads)."""
    from runner.config.deciding import shortest

    assert [shortest(v) for v in ("0.15000000000000002", "1.0", "1e-05", "0.10", "relu")] == \
        ["0.15", "1.0", "1e-05", "0.10", "relu"]
    assert shortest("0.591031707742531") == "0.591032"  # Optuna's draw: 6 digits, not 12 (0.591031707743)
    assert shortest("0.0012345678901234567") == "0.00123457"
    assert shortest("0.39806870483000004") == "0.398069"  # a draw whose 12th digit is 0 is a draw still
    assert shortest("0.30000000000000004") == "0.3" and shortest("0.123456789") == "0.123456789"  # as typed


def test_config_yaml_is_the_text_omegaconf_writes_of_the_recorded_config(monkeypatch):
    """``recorded_yaml`` dumps the recorded dict with OmegaConf's own dumper, skipping the config it would
    make of it first: the same text for every preset and every group's option, for a secret read from the
    environment (kept as written) and for strings another YAML reader would take for numbers or bools."""
    from omegaconf import OmegaConf

    from runner.config.recorded import as_recorded, recorded_yaml

    monkeypatch.setenv("BACKPROP_LAB_TOKEN", "s3cret")
    cases = [[f"experiment={name}"] for name in options("experiment")]
    cases += [[f"{group}={option}", *REQUIRED.get((group, option), [])] for group, option in GROUP_OPTIONS]
    cases += [["description=${oc.env:BACKPROP_LAB_TOKEN}"], ["+note='1e-3'"], ["+note='true'"], ["+note='null'"],
              ["+note='1_000'"], ["+note='.inf'"], ["+note='häßlich: ü'"]]
    for overrides in cases:
        cfg = compose_cfg(overrides)
        assert recorded_yaml(cfg) == OmegaConf.to_yaml(as_recorded(cfg)), overrides
    text = recorded_yaml(compose_cfg(["description=${oc.env:BACKPROP_LAB_TOKEN}", "+note='1e-3'"]))
    assert "s3cret" not in text and "description: ${oc.env:BACKPROP_LAB_TOKEN}" in text
    assert OmegaConf.create(text).note == "1e-3"  # read back as text, not as the number

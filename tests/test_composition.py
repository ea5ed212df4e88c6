"""A sweep's jobs are composed once per distinct choice of options, their values applied after
(``runner.sweep.composed_once``): proven equal to Hydra's own composition of each whole job, key by
key, the ``hydra`` node included, for every job of every sweep preset and for random override sets."""

import pickle
import random
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import OmegaConf, open_dict

from runner.config.options import register
from runner.sweep.composed_once import ComposedOnce
from runner.sweep.jobs import sweep_jobs

PRESETS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "experiment").glob("*.yaml")
                 if "sweeper:" in p.read_text())


@pytest.fixture(scope="module")
def hydra_loader():
    register()
    with initialize_config_module(config_module="runner.conf", version_base="1.3"):
        yield GlobalHydra.instance().config_loader()


def master_config(overrides, sweep_dir):
    config = compose("config", overrides=[*overrides, f"hydra.sweep.dir={sweep_dir}"], return_hydra_config=True)
    return config


def hydra_s_own(loader, master, overrides):
    return type(loader).load_sweep_config(loader, master, overrides)


def assert_same(ours, theirs):
    """Equal as written (interpolations unresolved) and, the task part, as resolved."""
    assert OmegaConf.to_container(ours, resolve=False) == OmegaConf.to_container(theirs, resolve=False)
    HydraConfig.instance().set_config(theirs)
    resolved = []
    for config in (ours, theirs):
        task = OmegaConf.to_container(config, resolve=False)
        task.pop("hydra")
        with open_dict(config):
            plain = {key: OmegaConf.to_container(config[key], resolve=True) if OmegaConf.is_config(config[key])
                     else config[key] for key in task}
        resolved.append(plain)
    assert resolved[0] == resolved[1]


def check_preset(loader, preset, sweep_dir, most=None):
    master = master_config([f"experiment={preset}"], sweep_dir)
    jobs = sweep_jobs(master, loader)
    composed = ComposedOnce(loader)
    for overrides in jobs[:most]:
        assert_same(composed(master, list(overrides)), hydra_s_own(loader, master, list(overrides)))


@pytest.mark.parametrize("preset", PRESETS)
def test_the_first_jobs_of_every_sweep_preset_are_hydra_s_composition(hydra_loader, preset, tmp_path):
    check_preset(hydra_loader, preset, tmp_path, most=3)


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_job_of_every_sweep_preset_is_hydra_s_composition(hydra_loader, preset, tmp_path):
    check_preset(hydra_loader, preset, tmp_path)


CHOICES = {"activation": ["relu", "tanh", "sigmoid", "gelu", "leaky_relu"], "init": ["normal", "he_normal", "orthogonal",
           "mean_field"], "optimizer": ["sgd", "adam", "momentum"], "architecture": ["deep", "mlp"],
           "dataset": ["moons", "circles", "xor"]}
VALUES = {"optimizer.lr": ["0.1", "1e-3", "0.15000000000000002"], "seed": ["0", "7"], "trainer.epochs": ["3", "40"],
          "trainer.batch_size": ["null", "16"], "description": ["'a, b'", "${activation.name}"],
          "trainer.clip_grad_norm": ["1.0", "null"], "tracking.detail": ["full", "standard"]}


@pytest.mark.parametrize("draw", range(5))
def test_random_override_sets_are_hydra_s_composition(hydra_loader, draw, tmp_path):
    rng = random.Random(draw)
    master = master_config(["hydra/launcher=joblib"] if draw % 3 == 0 else [], tmp_path)
    composed = ComposedOnce(hydra_loader)
    for _ in range(6):
        overrides = [f"{group}={rng.choice(options)}" for group, options in CHOICES.items() if rng.random() < 0.5]
        overrides += [f"{key}={rng.choice(options)}" for key, options in VALUES.items() if rng.random() < 0.5]
        if "architecture=mlp" in overrides:
            overrides.append("architecture.hidden_sizes=[4,3]")
        elif rng.random() < 0.5:
            overrides.append(f"architecture.depth={rng.randint(1, 9)}")
        if any(o.startswith("init=normal") for o in overrides) and rng.random() < 0.5:
            overrides.append("init.std=0.3")
        rng.shuffle(overrides)
        assert_same(composed(master, overrides), hydra_s_own(hydra_loader, master, overrides))


@pytest.mark.parametrize("bad", [["architecture.depth=abc"], ["activation=relu", "activation.beta=2"],
                                 ["architecture=mlp", "architecture.depth=3"], ["optimizer.nesterov=maybe"]])
def test_a_bad_value_fails_as_hydra_fails_it(hydra_loader, bad, tmp_path):
    master = master_config([], tmp_path)
    with pytest.raises(HydraException) as theirs:
        hydra_s_own(hydra_loader, master, bad)
    with pytest.raises(type(theirs.value)) as ours:
        ComposedOnce(hydra_loader)(master, bad)
    assert str(ours.value) == str(theirs.value)


def test_jobs_that_choose_the_same_options_share_one_composition(hydra_loader, tmp_path):
    master = master_config([], tmp_path)
    composed = ComposedOnce(hydra_loader)
    for depth in range(1, 6):
        for activation in ("relu", "tanh"):
            composed(master, [f"architecture.depth={depth}", f"activation={activation}"])
    assert len(composed.bases) == 2


def test_every_job_carries_what_its_sweep_tells_it_in_hydra_s_env_set_also_in_a_worker(hydra_loader, tmp_path):
    """A job's run name says what varies in its sweep: the launching process tells every job so through
    ``hydra.job.env_set`` (Hydra sets it around the job on any launcher; a worker a Ray node started
    inherits nothing from the launching process), also in a worker composing from the shared file."""
    master = master_config([], tmp_path)
    composed = ComposedOnce(hydra_loader)
    composed.job_env["BACKPROP_LAB_VARYING_KEYS"] = '["activation"]'
    job = ["architecture.depth=2", "activation=relu"]
    ours = composed(master, job)
    assert dict(ours.hydra.job.env_set) == {"BACKPROP_LAB_VARYING_KEYS": '["activation"]'}
    theirs = hydra_s_own(hydra_loader, master, job)
    with open_dict(theirs.hydra.job.env_set):
        theirs.hydra.job.env_set["BACKPROP_LAB_VARYING_KEYS"] = '["activation"]'
    assert_same(ours, theirs)  # and nothing else differs
    worker = pickle.loads(pickle.dumps(composed))  # what a parallel launcher ships: a ComposedAhead
    assert type(worker).__name__ == "ComposedAhead"
    assert dict(worker(master, job).hydra.job.env_set) == {"BACKPROP_LAB_VARYING_KEYS": '["activation"]'}
    composed.discard()
    unshared = ComposedOnce(hydra_loader)  # nothing composed to hand over: the worker composes, still told
    unshared.job_env["BACKPROP_LAB_VARYING_KEYS"] = '["activation"]'
    worker = pickle.loads(pickle.dumps(unshared))
    assert_same(worker(master, job), theirs)


def test_each_config_file_is_read_once_per_sweep_and_every_composition_gets_its_own_copy(hydra_loader, tmp_path):
    """``parsed_once``: a choice of options is composed without reading again a config file read for another,
    and every load is a copy of its own (Hydra merges loaded configs into the job's without copying)."""
    master = master_config([], tmp_path)
    composed = ComposedOnce(hydra_loader)
    composed(master, ["activation=relu"])
    composed(master, ["activation=tanh"])
    read = []
    delegate = composed.parsed.delegate
    original = type(delegate).load_config
    delegate.load_config = lambda config_path: read.append(config_path) or original(delegate, config_path)
    job = ["activation=tanh", "init=he_normal"]
    try:
        ours = composed(master, job)
    finally:
        del delegate.load_config
    assert_same(ours, hydra_s_own(hydra_loader, master, job))
    assert read and all("he_normal" in path for path in read)  # the option not chosen before (and its schema)
    assert hydra_loader.repository is not composed.parsed  # put back after each composition
    first = composed.parsed.load_config("config")
    as_loaded = OmegaConf.to_container(first.config)
    first.config.clear()
    first.defaults_list.clear()
    again = composed.parsed.load_config("config")
    assert as_loaded and OmegaConf.to_container(again.config) == as_loaded and again.defaults_list


def test_a_search_path_given_to_a_sweep_is_composed_as_hydra_composes_it(hydra_loader, tmp_path):
    """A ``hydra.searchpath`` makes Hydra replace the sources of its copy of the repository: the options it
    adds are composed (and read once) as Hydra's own, and the loader's own sources are left as they were."""
    extra = tmp_path / "extra" / "activation"
    extra.mkdir(parents=True)
    (extra / "mine.yaml").write_text("name: tanh\n")
    sources = list(hydra_loader.repository.get_sources())
    master = master_config([f"hydra.searchpath=[file://{tmp_path / 'extra'}]"], tmp_path / "sweep")
    composed = ComposedOnce(hydra_loader)
    for job in (["activation=mine"], ["activation=relu"], ["activation=mine", "architecture.depth=3"]):
        assert_same(composed(master, job), hydra_s_own(hydra_loader, master, job))
    assert hydra_loader.repository.get_sources() == sources
    assert any(str(tmp_path / "extra") in str(searched) for searched, _ in composed.parsed.loaded)

# values each key may take in the random sweeps below, good and bad: the checker's verdict on each job
# (passed, or its one-line error) must be check_job's
SWEPT = {"optimizer.lr": ["0.1", "1e-3", "0", "-1", "inf", "abc", "${trainer.nope}", "${init.gain}"],
         "architecture.depth": ["1", "4", "0", "2.5", "x"], "architecture.width": ["3", "0", "1e9"],
         "seed": ["0", "5", "-2", "${seed}"], "trainer.epochs": ["1", "2", "-1"], "trainer.batch_size": ["null", "8", "1"],
         "description": ["a", "???", "${oc.env:BACKPROP_LAB_UNSET}"], "dataset.n_samples": ["40", "1", "1e12"],
         "trainer.clip_grad_norm": ["1.0", "null", "nan"], "architecture.hidden_sizes": ["[4,3]", "[0]"],
         "architecture.name": ["deep", "mlp"]}


def verdict(check, *args) -> str:
    from runner.config.errors import ConfigError

    try:
        check(*args)
    except ConfigError as err:
        return str(err)
    return "passed"


@pytest.mark.parametrize("draw", range(8))
def test_the_sweep_checker_s_verdict_on_every_job_is_check_job_s(hydra_loader, draw, tmp_path):
    """``JobChecker`` checks a job that differs from one checked before only in the values it assigns on
    that job's config; on random grids of good and bad values its verdict on every job is ``check_job``'s,
    word for word, and the short way is taken."""
    import itertools

    import runner.sweep.jobs as jobs

    rng = random.Random(draw)
    master = master_config([], tmp_path)
    HydraConfig.instance().set_config(master)
    keys = rng.sample(sorted(SWEPT), 3)
    axes = [[f"{key}={value}" for value in rng.sample(SWEPT[key], min(3, len(SWEPT[key])))] for key in keys]
    axes.append([f"activation={a}" for a in rng.sample(CHOICES["activation"], 2)])
    whole = []
    checker = jobs.JobChecker(master, hydra_loader)
    original = jobs.check_job
    try:
        jobs.check_job = lambda *args: whole.append(args[2]) or original(*args)
        ours = [verdict(checker.check, list(job), "here") for job in itertools.product(*axes)]
    finally:
        jobs.check_job = original
    theirs = [verdict(original, master, hydra_loader, list(job), "here") for job in itertools.product(*axes)]
    assert ours == theirs
    # the activation varies fastest: a job's predecessor of its kind is two jobs back; where both passed, the
    # job went the short way (after a failure a kind starts again whole: a real sweep stops at its first)
    # (a job that assigns an option's name is always checked whole)
    grid = list(itertools.product(*axes))
    short = sum(ours[i] == ours[i - 2] == "passed" and not any(".name=" in o for o in grid[i]) for i in range(2, len(ours)))
    assert len(whole) == len(ours) - short


def test_a_grid_of_values_is_checked_the_short_way(hydra_loader, tmp_path):
    import runner.sweep.jobs as jobs

    master = master_config([], tmp_path)
    checker, whole, original = jobs.JobChecker(master, hydra_loader), [], jobs.check_job
    try:
        jobs.check_job = lambda *args: whole.append(args[2]) or original(*args)
        for depth in range(1, 7):
            for activation in ("relu", "tanh"):
                for lr in ("0.1", "0.2"):
                    checker.check([f"activation={activation}", f"architecture.depth={depth}", f"optimizer.lr={lr}",
                                   "trainer.epochs=2"], "here")
        with pytest.raises(Exception, match=r"architecture.depth=0: must be >= 1 \[here\]"):
            checker.check(["activation=relu", "architecture.depth=0", "optimizer.lr=0.1", "trainer.epochs=2"], "here")
    finally:
        jobs.check_job = original
    assert len(whole) == 2 + 1  # the first job of each choice of activation, and the bad one checked again whole


# good values only, an interpolation among them: every job passes, most the short way
GOOD = {"optimizer.lr": ["0.1", "1e-3", "1"], "architecture.depth": ["1", "4"], "architecture.width": ["3", "5"],
        "seed": ["0", "5", "${trainer.epochs}"], "trainer.epochs": ["1", "2"], "trainer.batch_size": ["null", "8"],
        "dataset.n_samples": ["40", "60"], "trainer.clip_grad_norm": ["1.0", "null"], "description": ["a", "b"]}


@pytest.mark.parametrize("draw", range(6))
def test_a_job_checked_the_short_way_has_the_values_hydra_resolves_for_it(hydra_loader, draw, tmp_path):
    """Where no value interpolates, the short way reads back only the assigned keys' values instead of
    resolving the whole config again; what it hands to the build equals, key by key, the resolved values
    of Hydra's own composition of that job."""
    import itertools

    from runner.config.checks import check_resolvable, task_config
    from runner.sweep.jobs import JobChecker

    rng = random.Random(draw)
    master = master_config([], tmp_path)
    HydraConfig.instance().set_config(master)
    axes = [[f"{key}={value}" for value in GOOD[key]] for key in rng.sample(sorted(GOOD), 3)]
    axes.append([f"activation={a}" for a in rng.sample(["relu", "tanh", "sigmoid"], 2)])
    checker, short = JobChecker(master, hydra_loader), 0
    for job in itertools.product(*axes):
        values = checker.check(list(job), "here")
        if values is not None:
            short += 1
            theirs = check_resolvable(task_config(hydra_s_own(hydra_loader, master, list(job)), owned=True))
            assert values == theirs, job
    assert short == len(list(itertools.product(*axes))) - 2  # all but each activation's first job

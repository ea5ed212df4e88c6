"""What ``runner.sweep`` relies on in Hydra beyond its documented API, pinned: if an upgrade of Hydra
or of its joblib launcher changes any of it, these fail before a sweep does."""

import inspect

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra_plugins.hydra_joblib_launcher import _core as joblib_core


def test_the_basic_sweeper_expands_sweeps_as_a_cartesian_product_in_order():
    """``runner.sweep.jobs.sweep_jobs`` lists the jobs the basic sweeper will launch with it."""
    overrides = OverridesParser.create().parse_overrides(["a=1,2", "b=x,y", "c=3"])
    (batch,) = BasicSweeper.split_arguments(overrides, None)
    assert batch == [["a=1", "b=x", "c=3"], ["a=1", "b=y", "c=3"], ["a=2", "b=x", "c=3"], ["a=2", "b=y", "c=3"]]
    assert len(BasicSweeper.split_arguments(overrides, 3)) == 2  # batches of at most 3 jobs


def test_every_launcher_composes_a_job_through_the_loaders_load_sweep_config():
    """``ComposedOnce`` replaces ``load_sweep_config`` on the loader instance: the launchers must call it
    by that name on ``hydra_context.config_loader``, with the master config and the job's overrides."""
    assert list(inspect.signature(ConfigLoaderImpl.load_sweep_config).parameters) == [
        "self", "master_config", "sweep_overrides"]
    for source in (inspect.getsource(BasicLauncher.launch), inspect.getsource(joblib_core.execute_job)):
        assert "hydra_context.config_loader.load_sweep_config(" in source


def test_the_composed_once_loader_is_what_a_launcher_calls(tmp_path):
    """Installed on a loader, ``ComposedOnce`` answers the launchers' call and composes each job once."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from runner.config.options import register
    from runner.sweep.composed_once import ComposedOnce

    register()
    with initialize_config_module(config_module="runner.conf", version_base="1.3"):
        master = compose("config", overrides=[f"hydra.sweep.dir={tmp_path}"], return_hydra_config=True)
        loader = GlobalHydra.instance().config_loader()
        composed = ComposedOnce.install(loader)
        assert loader.load_sweep_config is composed and ComposedOnce.install(loader) is composed
        first = loader.load_sweep_config(master, ["activation=relu"])
        again = loader.load_sweep_config(master, ["activation=relu"])
        assert first.activation.name == "relu" and first is not again and len(composed.bases) == 1


def test_what_composing_once_per_choice_relies_on():
    """``ComposedOnce`` sorts overrides as Hydra's defaults list does (a config group not given a dict
    shapes it), applies the rest with Hydra's own ``_apply_overrides_to_config`` and names the job's
    directory with ``get_overrides_dirname`` (``tests/test_composition.py`` proves the result equal)."""
    from hydra._internal import defaults_list
    from hydra._internal.config_loader_impl import get_overrides_dirname

    assert list(inspect.signature(ConfigLoaderImpl._apply_overrides_to_config).parameters) == ["overrides", "cfg"]
    assert "repo.group_exists(override.key_or_group)" in inspect.getsource(defaults_list.Overrides.__init__)
    assert "is_dict or not is_group" in inspect.getsource(defaults_list.Overrides.__init__)
    assert list(inspect.signature(get_overrides_dirname).parameters) == ["overrides", "exclude_keys", "item_sep",
                                                                         "kv_sep"]
    source = inspect.getsource(ConfigLoaderImpl._load_configuration_impl)
    assert "ConfigLoaderImpl._apply_overrides_to_config(config_overrides, cfg)" in source
    assert "cfg.hydra.job.override_dirname = get_overrides_dirname(" in source


def test_hydra_finds_our_optuna_sweeper_and_no_other():
    """Hydra instantiates a sweeper only from the ``hydra_plugins`` package, found by walking its folders
    (an editable install must give it ours: pyproject lists ``hydra_plugins`` as a package). Hydra's own
    Optuna plugin, left by an older checkout, would shadow ``hydra/sweeper=optuna`` with optuna 2.10."""
    from importlib.metadata import distributions, version

    from hydra.core.plugins import Plugins
    from hydra.plugins.sweeper import Sweeper

    from runner.config.schema import OPTUNA_SWEEPER

    found = [f"{c.__module__}.{c.__name__}" for c in Plugins.instance().discover(Sweeper)]
    assert OPTUNA_SWEEPER in found and not any("hydra_optuna_sweeper" in name for name in found)
    assert int(version("optuna").split(".")[0]) >= 4
    pins = [f"{d.metadata['Name']}: {r}" for d in distributions() for r in (d.requires or [])
            if r.lower().startswith("optuna") and "<3" in r.replace(" ", "")]
    assert pins == []  # nothing installed pins an optuna from before 2023


def test_the_grid_sweeper_is_the_basic_sweeper_minus_its_batch_validation():
    """``hydra/sweeper=grid`` subclasses the basic sweeper and overrides the methods its ``sweep`` calls to
    get each batch and before launching it (the batch it gets is the one it launches, numbered in its
    order); everything else (expansion, batches, launching) is the basic sweeper's."""
    from hydra_plugins.backprop_lab_sweepers.grid_sweeper import GridSweeper

    from runner.config.schema import GridSweeperConfig

    sweep = inspect.getsource(BasicSweeper.sweep)
    for line in ("batch = self.get_job_batch()", "self.validate_batch_is_legal(batch)",
                 "self.launcher.launch(batch, initial_job_idx=initial_job_idx)"):
        assert line in sweep
    assert {name for name in vars(GridSweeper) if not name.startswith("_")} == {"get_job_batch",
                                                                               "validate_batch_is_legal"}
    basic = inspect.signature(BasicSweeper.__init__).parameters
    assert {"max_batch_size", "params"} <= set(basic)
    assert {f for f in GridSweeperConfig.__dataclass_fields__ if f != "_target_"} == {"max_batch_size", "params",
                                                                                      "longest_first"}


def test_what_scanning_the_plugins_once_per_joblib_worker_relies_on():
    """``runner.sweep.joblib_workers`` hands each job's restored singletons the plugins its worker scanned
    once: ``execute_job`` restores them from its last argument, and a restored state that holds the
    plugins is not scanned again."""
    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton

    assert list(inspect.signature(joblib_core.execute_job).parameters)[-1] == "singleton_state"
    assert "Singleton.set_state(singleton_state)" in inspect.getsource(joblib_core.execute_job)
    plugins, state = Plugins.instance(), Singleton.get_state()
    assert Plugins not in state["instances"]  # left out: set_state would scan again
    state["instances"][Plugins] = plugins
    Singleton.set_state(state)  # this process's singletons as they were
    assert Plugins.instance() is plugins


def test_what_handing_the_config_store_to_joblibs_workers_once_relies_on():
    """``runner.sweep.config_store_once``: the joblib launcher sends every job the singletons' state, which
    holds (a copy of) the ConfigStore, whose configs are all in its ``repo``; loky pickles it with the
    reducers registered with its ``reduction.register``, which ``copy.deepcopy`` (Hydra copies the store
    as it composes) does not follow."""
    import copy

    from hydra.core.config_store import ConfigStore
    from hydra.core.singleton import Singleton
    from joblib.externals.loky.backend import reduction

    assert "singleton_state = Singleton.get_state()" in inspect.getsource(joblib_core.launch)
    assert isinstance(Singleton.get_state()["instances"][ConfigStore], ConfigStore)  # a copy of it
    assert list(vars(ConfigStore.instance())) == ["repo"]
    reduced = []

    class Probe:
        pass

    reduction.register(Probe, lambda probe: reduced.append(probe) or (Probe, ()))
    try:
        copy.deepcopy(Probe())
        assert not reduced
        reduction.dumps(Probe())
        assert len(reduced) == 1
    finally:
        reduction._dispatch_table.pop(Probe)


def test_what_reading_a_failed_override_and_composing_on_files_read_once_rely_on():
    """``runner.config.hydra_errors.failed_override`` finds the override OmegaConf failed on in the frame of
    Hydra's ``_apply_overrides_to_config`` (its locals ``override`` and ``cfg``); ``runner.sweep.parsed_once``
    stands in for the loader's ``repository``, which each composition copies into a
    ``CachingConfigRepository`` that loads through it and may re-initialize the copy's sources."""
    from hydra._internal.config_repository import CachingConfigRepository

    from runner.config.hydra_errors import APPLYING_OVERRIDES

    applying = getattr(ConfigLoaderImpl, APPLYING_OVERRIDES)
    assert applying.__module__.startswith("hydra.") and list(inspect.signature(applying).parameters) == [
        "overrides", "cfg"]
    assert "override" in applying.__code__.co_varnames
    assert "CachingConfigRepository(self.repository)" in inspect.getsource(
        ConfigLoaderImpl._parse_overrides_and_create_caching_repo)
    assert "copy.deepcopy(delegate)" in inspect.getsource(CachingConfigRepository.__init__)
    assert "self.delegate.load_config(config_path=config_path)" in inspect.getsource(CachingConfigRepository.load_config)

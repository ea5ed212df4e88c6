"""An Optuna search's study: where it is stored (beside the tracking store), which one a command opens
(a new one each time, or with ``resume=true`` the latest of its name), its sampler, and the trials a
killed search left running.  Imported by searches only: Optuna takes ~0.3 s to import (measured)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import optuna
from omegaconf import DictConfig

from ..config.errors import ConfigError
from ..processes import alive, this_process
from ..run.trial import make_pruner
from ..tracking.checks import original_cwd
from ..tracking.stores import absolute_uri, embedded_store, experiment_name, resolve_uri, sqlite_path, store_lock

STUDY_FILE = "optuna.db"
OWNER = "sweeper"  # a trial's user attribute: the process that runs it (``runner.processes.this_process``)


def study_storage(config: DictConfig) -> str:
    """``hydra.sweeper.storage``, else ``optuna.db`` beside the embedded (sqlite) MLflow store; a store
    that is no sqlite file (a server, a database) gets the study in ``outputs/optuna.db``: Optuna and
    MLflow cannot share a database (both keep an ``alembic_version`` table)."""
    cwd = original_cwd(config)
    uri = resolve_uri(config.tracking.uri, cwd)[0] if config.tracking.name == "mlflow" else ""
    if config.hydra.sweeper.storage:
        storage = absolute_uri(config.hydra.sweeper.storage, cwd)
        if storage == uri:
            raise ConfigError(f"hydra.sweeper.storage={config.hydra.sweeper.storage}",
                              "is the MLflow store's own database; Optuna needs one of its own (both keep an "
                              "alembic_version table)")
        return storage
    if not (uri.startswith("sqlite:////") and uri.endswith(".db")):
        uri = embedded_store(cwd)[0]
    return f"sqlite:///{(sqlite_path(uri).parent / STUDY_FILE).absolute()}"


def study_name(config: DictConfig, storage: str) -> str:
    """A new study: the base name (``hydra.sweeper.study_name``, else the experiment's), or ``<base>-2``,
    ``-3``... when taken.  With ``resume=true`` the latest of those; ConfigError when there is none."""
    base = config.hydra.sweeper.study_name or experiment_name(config.tracking.experiment,
                                                              config.hydra.runtime.choices.get("experiment"))
    path = sqlite_path(storage)
    numbers = _numbers(base, storage) if path is None or path.exists() else []
    if config.resume:
        if not numbers:
            raise ConfigError("resume=true", f"there is no study {base!r} to continue in {storage}; without "
                                             "resume=true a new one starts")
        return _named(base, max(numbers))
    return _named(base, next(n for n in range(1, len(numbers) + 2) if n not in numbers))


def _numbers(base: str, storage: str) -> list[int]:
    pattern = re.compile(rf"{re.escape(base)}(?:-(\d+))?")
    return [int(m.group(1) or 1) for name in optuna.get_all_study_names(storage) if (m := pattern.fullmatch(name))]


def _named(base: str, number: int) -> str:
    return base if number == 1 else f"{base}-{number}"


def _sampler(settings: DictConfig, trials_before: int):
    """The sampler, seeded with ``seed`` + the trials the study already holds: a resumed search draws on,
    rather than drawing its first trials again (a seeded sampler would repeat them)."""
    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
                "qmc": optuna.samplers.QMCSampler}
    seed = None if settings.seed is None else settings.seed + trials_before
    return samplers[str(settings.sampler)](seed=seed)


@dataclass
class Study:
    """The study a search runs, with its storage (Optuna's public storage interface: trial ids, user
    attributes) and its name."""

    study: object  # optuna.Study
    storage: object  # optuna.storages.RDBStorage
    url: str
    name: str

    @classmethod
    def open(cls, config: DictConfig) -> Study:
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the search prints what it does
        url = study_storage(config)
        settings = config.hydra.sweeper
        with store_lock(url):  # two searches starting at once on a new database: its tables made once
            storage = optuna.storages.RDBStorage(url)
            name = study_name(config, url)
            study = optuna.create_study(storage=storage, study_name=name, pruner=make_pruner(settings),
                                        direction=str(settings.direction), load_if_exists=bool(config.resume))
        study.sampler = _sampler(settings, len(study.get_trials(deepcopy=False)))
        return cls(study, storage, url, name)

    def trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(
            self.storage.get_study_id_from_name(self.name), number)

    def claim(self, number: int) -> None:
        """Mark trial ``number`` as run by this process."""
        self.storage.set_trial_user_attr(self.trial_id(number), OWNER, this_process())

    def interrupted(self) -> list:
        """The trials left running by a search that is gone (killed): a resumed search runs them again,
        with the same parameters, under the same numbers."""
        running = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        return [t for t in running if OWNER not in t.user_attrs or not alive(t.user_attrs[OWNER])]

    def ended(self) -> int:
        states = optuna.trial.TrialState
        return len(self.study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED, states.FAIL)))

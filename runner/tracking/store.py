"""Opening the tracking store (a sqlite store made whole or found whole, under an inter-process lock)
and the experiment a command writes into, created once however many commands race to."""

from __future__ import annotations

import functools
import inspect
import os
from pathlib import Path
from typing import NamedTuple

# bounded retries for an HTTP store: MLflow's defaults (7 retries, 120 s timeout) hang for minutes
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
# against a server, MLflow prints "View run" and "View experiment" links as each run ends: the latter opens
# its GenAI overview, and a sweep printed two per job; the runner prints the links that open on the answer
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from ..processes import interruptions_deferred  # noqa: E402
from .links import is_server  # noqa: E402
from .schema import DEFAULT_EXPERIMENT, MODEL_TRAINING, NOTE  # noqa: E402
from .sqlite_store import ensure_whole  # noqa: E402
from .stores import check_case_twin, experiment_name, path_part, resolve_uri, store_lock  # noqa: E402


class WholeCallsClient(MlflowClient):
    """An ``MlflowClient`` whose every call is made whole: a Ctrl-C or SIGTERM landing inside one is acted
    on as it returns (``interruptions_deferred``; a call takes milliseconds, a search of a thousand runs
    seconds).  Landing inside a read of a sqlite store, it left a connection that nothing closes holding
    the read's lock, and every write after it (closing the interrupted run, or the sweep's parent run as
    killed) waited MLflow's 20 s for that lock, twice, then failed: the run stayed RUNNING (1 Ctrl-C in 8
    during a sweep's report)."""


def _whole(method):
    @functools.wraps(method)
    def call(*args, **kwargs):
        with interruptions_deferred():
            return method(*args, **kwargs)
    return call


for _name, _method in vars(MlflowClient).items():  # its methods (not its static or class ones)
    if inspect.isfunction(_method) and not _name.startswith("_"):
        setattr(WholeCallsClient, _name, _whole(_method))


class TrackedExperiment(NamedTuple):
    """The MLflow experiment a command writes into, and its store."""

    client: MlflowClient
    experiment_id: str
    name: str
    uri: str


def open_experiment(configured_uri: str | None, cwd: Path | None, experiment: str | None, preset: str | None,
                    description: str | None) -> TrackedExperiment:
    """The store in force opened (made whole if new) and its experiment found or created: the one way
    a run and a sweep open what they write into."""
    uri, artifact_root, source = resolve_uri(configured_uri, cwd)
    client = open_store(uri, source, artifact_root=artifact_root)
    name = experiment_name(experiment, preset)
    default = name == DEFAULT_EXPERIMENT  # given or not: the store's own, whatever its case
    if default:
        name = default_experiment(client)
    experiment_id = ensure_experiment(client, name, artifact_root, description, twin_refused=not default)
    return TrackedExperiment(client, experiment_id, name, uri)


def default_experiment(client: MlflowClient) -> str:
    """The experiment of a run with no preset and no ``tracking.experiment`` (or with ``default``, its name
    in the docs), and of ``python -m runner.report default``: ``default``, as a store we make
    names MLflow's experiment 0; in a store MLflow made (a server's), MLflow's own ``Default``, not a second
    one beside it, unless its artifacts can only be written through a server this client does not talk to
    (``mlflow-artifacts:/0``, in a file ``mlflow ui`` made before any run): then ``default`` beside it."""
    if client.get_experiment_by_name(DEFAULT_EXPERIMENT) is not None:
        return DEFAULT_EXPERIMENT
    through_server = is_server(client.tracking_uri)
    return next((e.name for e in client.search_experiments() if e.name.casefold() == DEFAULT_EXPERIMENT.casefold()
                 and (through_server or not e.artifact_location.startswith("mlflow-artifacts:"))), DEFAULT_EXPERIMENT)


def open_store(uri: str, source: str | None = None, create: bool = True,
               artifact_root: str | None = None) -> MlflowClient:
    """A client of the store at ``uri``; a sqlite store is made whole or found whole, under an
    inter-process lock (``runner.tracking.sqlite_store``), else ConfigError naming ``source``.  With
    ``create=False`` (a command that only reads) a store that is not whole is refused, never changed.

    MLflow creates a fresh sqlite store by running its migrations; several processes doing so at
    once fail (``duplicate column name``), and one killed among them leaves the store unusable.
    MLflow caches the store per process, so only the first use in each process needs the lock.
    """
    if uri in _OPENED:
        return WholeCallsClient(uri)
    with store_lock(uri):  # the client itself may open the store: create it under the lock too
        if uri.startswith("sqlite:///"):
            ensure_whole(Path(uri.removeprefix("sqlite:///")), source or f"tracking.uri={uri}", create, artifact_root)
        client = WholeCallsClient(uri)
        client.search_experiments(max_results=1)
    _OPENED.add(uri)
    return client


_OPENED: set[str] = set()  # the stores this process has opened (and so found or made whole)


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str | None,
                      description: str | None = None, twin_refused: bool = True) -> str:
    """The id of experiment ``name``, created if needed (under the store's lock: concurrent
    commands create it once); one whose name differs only in case from the store's is refused, unless
    not ``twin_refused``."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        with store_lock(client.tracking_uri):
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                if twin_refused:
                    check_case_twin(name, [e.name for e in client.search_experiments()], f"tracking.experiment={name}")
                location = f"{artifact_root}/{path_part(name)}" if artifact_root else None
                tags = dict([MODEL_TRAINING]) | ({NOTE: description} if description else {})
                try:
                    return client.create_experiment(name, artifact_location=location, tags=tags)
                except MlflowException:  # a server's other client created it first
                    experiment = client.get_experiment_by_name(name)
                    if experiment is None:
                        raise
    return experiment.experiment_id


"""Where the tracking store is, and whether it can be reached, without importing MLflow
(``import mlflow`` costs over a second; a command refused for its store should not pay it)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from filelock import FileLock

from ..config.errors import ConfigError
from ..files import write_error
from .schema import DEFAULT_EXPERIMENT, MAX_EXPERIMENT_NAME

REACH_SECONDS = 3.0  # how long a tracking server or database may take to answer the check
DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every sqlite database file


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for any other."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def store_lock(uri: str):
    """An inter-process lock beside a sqlite database (``mlflow.db.lock``, ``optuna.db.lock``): the
    commands that would create its tables at once create them one after the other; a no-op for a server."""
    path = sqlite_path(uri)
    if path is None:
        return contextlib.nullcontext()
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(f"{path}.lock", timeout=300)


def embedded_store(cwd: Path | None = None) -> tuple[str, str]:
    """The default store: ``sqlite:///<cwd>/outputs/mlflow.db`` and its artifact root beside it."""
    outputs = (cwd or Path.cwd()).resolve() / "outputs"
    return f"sqlite:///{outputs / 'mlflow.db'}", (outputs / "mlartifacts").as_uri()


def resolve_uri(configured: str | None, cwd: Path | None = None) -> tuple[str, str | None, str]:
    """``(tracking URI, artifact root for new experiments or None, where the URI was set)``:
    ``tracking.uri`` if set, else ``$MLFLOW_TRACKING_URI``, else the embedded store.  A relative
    sqlite path, and the embedded store, are taken from ``cwd``: the folder the command was started
    in (a job that Hydra moved into its run directory, ``hydra.job.chdir=true``, passes it)."""
    if configured:
        uri, source = absolute_uri(configured, cwd), f"tracking.uri={configured}"
    elif os.environ.get("MLFLOW_TRACKING_URI"):
        given = os.environ["MLFLOW_TRACKING_URI"]
        uri, source = absolute_uri(given, cwd), f"MLFLOW_TRACKING_URI={given}"
    else:
        uri, artifacts = embedded_store(cwd)
        return uri, artifacts, f"tracking.uri=null (the embedded store {uri})"
    return uri, _beside(uri), source


def _beside(uri: str) -> str | None:
    """A sqlite store's artifacts live beside it (``mlartifacts/``), wherever the command runs; a
    server's and a database's where their server says (None)."""
    if not uri.startswith("sqlite:////") or _in_memory(uri):
        return None
    return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()


def absolute_uri(uri: str, cwd: Path | None) -> str:
    """``sqlite:///relative.db`` as ``sqlite:////<cwd>/relative.db``; any other URI as given."""
    if not uri.startswith("sqlite:///") or uri.startswith("sqlite:////") or _in_memory(uri) or uri == "sqlite:///":
        return uri
    return f"sqlite:///{(cwd or Path.cwd()).resolve() / uri.removeprefix('sqlite:///')}"


def _in_memory(uri: str) -> bool:
    return ":memory:" in uri or "mode=memory" in uri


def path_part(name: str) -> str:
    """``name`` (an experiment's) as one safe folder name: ``../../x`` never climbs out of its parent.
    Letters, digits, ``._-`` are kept; a name that needed changing gets a short hash of itself."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".")[:100] or "_"
    return safe if safe == name else f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def experiment_name(configured: str | None, preset: str | None) -> str:
    """The MLflow experiment of a run: ``tracking.experiment``, else the preset's name, else ``default``."""
    return configured if configured is not None else preset or DEFAULT_EXPERIMENT


def check_experiment_name(name: str, subject: str) -> None:
    """An MLflow experiment name: not empty, on one line, within MLflow's limit."""
    if not name.strip():
        raise ConfigError(subject, "an experiment name must not be empty")
    if any(ord(c) < 32 for c in name):
        raise ConfigError(subject, "an experiment name must be one line without control characters")
    if len(name) > MAX_EXPERIMENT_NAME:
        raise ConfigError(subject, f"an experiment name is at most {MAX_EXPERIMENT_NAME} characters "
                                   f"(MLflow's limit); this one has {len(name)}")


def check_case_twin(name: str, existing: list[str], subject: str) -> None:
    """ConfigError if ``existing`` (a store's experiments) has ``name`` only differing in case: a new
    experiment ``Default`` beside ``default`` would be listed twice by MLflow, and a study split in two."""
    if name not in existing and (twins := [e for e in existing if e.casefold() == name.casefold()]):
        raise ConfigError(subject, f"the store has {twins[0]!r}, a name differing only in case (MLflow would list "
                                   f"both): use {twins[0]!r}, or another name")


def reading(path: Path):
    """A connection that reads the sqlite file at ``path`` (never creating it), as a context.  Opened to
    write where it may: a command killed mid-write (``kill -9``, common when stopping a sweep) leaves a hot
    journal that only such a connection rolls back; a read-only one fails on it ("attempt to write a
    readonly database"), and a store that was whole had been taken for a half-made one and moved aside,
    after which the stale journal corrupted the store made in its place.  Waits up to 30 s for a writer."""
    return contextlib.closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=30))


def sqlite_experiments(uri: str) -> list[str]:
    """The active experiments' names in a sqlite store, read without MLflow; none where no store is yet."""
    path = sqlite_path(uri)
    if path is None or not path.is_file() or not path.stat().st_size:
        return []
    try:
        with reading(path) as connection:
            rows = connection.execute("select name from experiments where lifecycle_stage = 'active'").fetchall()
    except sqlite3.DatabaseError:  # not made yet, or not whole: opening it makes it whole (or says why)
        return []
    return [name for (name,) in rows]


def check_store(uri: str, source: str) -> None:
    """The tracking store at ``uri`` can be written (sqlite) or answers within a few seconds
    (a server, a database); ``source`` names where the URI came from (``tracking.uri=...``)."""
    try:
        parsed = urlparse(uri)
        parsed.port  # noqa: B018  (parsing the port raises for a malformed one)
    except ValueError as err:
        raise ConfigError(source, f"not a valid URI ({err})") from None
    scheme = parsed.scheme.split("+")[0]
    if scheme == "sqlite":
        _check_sqlite(uri, source)
    elif scheme in ("http", "https"):
        _check_server(uri, source)
    elif scheme in DATABASE_PORTS:
        _check_port(parsed.hostname or "localhost", parsed.port or DATABASE_PORTS[scheme], source)
    elif scheme not in ("databricks", "databricks-uc"):
        raise ConfigError(source, f"unknown tracking URI scheme {scheme or uri!r}: use sqlite:///path/to/mlflow.db, "
                                  "http(s)://host:port (an mlflow server) or postgresql://user@host/db")


def check_store_exists(uri: str, source: str) -> None:
    """A command that only reads a store (the report) finds one: a sqlite file that exists, or a
    server or database that answers; it never creates an empty store."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ConfigError(source, f"no store at {uri.removeprefix('sqlite:///')}: run an experiment first, "
                                  "or give the store with --uri")
    check_store(uri, source)


def _check_sqlite(uri: str, source: str) -> None:
    if not uri.startswith("sqlite:///") or uri == "sqlite:///":
        raise ConfigError(source, "a sqlite URI needs a file: sqlite:///relative/mlflow.db or sqlite:////abs/mlflow.db")
    if _in_memory(uri):
        raise ConfigError(source, "an in-memory store ends with the command and its runs with it: give a file, "
                                  "sqlite:///path/to/mlflow.db")
    path = Path(uri.removeprefix("sqlite:///"))
    if error := write_error(path):
        raise ConfigError(source, f"cannot write the sqlite store {path} ({error})")
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as file:
            if file.read(16) != SQLITE_HEADER:
                raise ConfigError(source, f"{path} is not a sqlite database (an MLflow store is one; "
                                          "a new one is made where no file is)")


def _check_server(uri: str, source: str) -> None:
    """Something answers at ``uri``, and it is an MLflow tracking server (its REST API answers JSON);
    a server that asks for credentials (401, 403) is taken as one: MLflow's client will say more."""
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        with urllib.request.urlopen(url, timeout=REACH_SECONDS) as answer:
            json.loads(answer.read(1_000_000))
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            return
        raise ConfigError(source, f"a server answers but it is not an MLflow tracking server "
                                  f"(GET /api/2.0/mlflow/experiments/search gave HTTP {err.code})") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ConfigError(source, f"no tracking server answers within {REACH_SECONDS:g} s ({reason})") from None
    except ValueError:
        raise ConfigError(source, "a server answers but it is not an MLflow tracking server (its API "
                                  "answered something other than JSON)") from None


def _check_port(host: str, port: int, source: str) -> None:
    try:
        socket.create_connection((host, port), timeout=REACH_SECONDS).close()
    except OSError as err:
        raise ConfigError(source, f"no database answers at {host}:{port} within {REACH_SECONDS:g} s ({err})") from None

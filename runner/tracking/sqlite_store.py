"""An embedded sqlite store that is whole or absent, at any instant.

MLflow makes a fresh sqlite store by running some fifty schema migrations in place, one after the
other; a process killed among them leaves a half-migrated file that every later MLflow command
fails on (``index ... already exists``).  Here a fresh store is made in a file beside the real
one and moved into place with one ``os.replace`` (atomic on a POSIX file system), under the
store's inter-process lock, so other commands see no store or a whole one (it is a copy of the
template the first one left, when there is one: ``runner.tracking.store_template``).  A half-made store left
by an earlier version, or an interrupted ``mlflow`` command, is recognised: moved aside when it
holds no run, refused in one line (saying what to do) when it does.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

from mlflow.entities import ExperimentTag
from mlflow.store.db.base_sql_model import Base
from mlflow.store.db.utils import _get_latest_schema_revision
from mlflow.store.tracking.dbmodels import models  # noqa: F401  (declares the tables in Base)
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from ..config.errors import ConfigError
from ..processes import Interrupted, interruptions_deferred
from .schema import DEFAULT_EXPERIMENT, MODEL_TRAINING
from .store_template import copy_template, keep_as_template
from .stores import reading

log = logging.getLogger(__name__)

CREATING = ".creating-"  # infix of the file a store is made in before it is moved into place


def ensure_whole(path: Path, source: str, create: bool = True, artifact_root: str | None = None) -> None:
    """Make the store at ``path`` if there is none (or only an empty file); leave a whole one alone;
    move aside a half-made one that holds no run; refuse one that holds runs (ConfigError naming
    ``source``, where the store was set).  With ``create=False`` nothing is changed: a store that is
    not whole is refused.  Call it holding the store's lock."""
    if create:
        _remove_stale_attempts(path)
    if path.is_file() and path.stat().st_size:
        try:
            problem = schema_problem(path)
            if problem is None:
                return
            runs = _count(path, "runs")
        except sqlite3.OperationalError as err:  # locked past the wait, a journal it cannot roll back: no verdict
            raise ConfigError(source, f"{path} cannot be read now ({err}); nothing was changed") from None
        if runs is None:
            raise ConfigError(source, f"{path} is not a readable sqlite database ({problem}); nothing was changed: "
                                      "move it away to start a new store")
        if runs or not create:
            advice = (f"back it up, then run `mlflow db upgrade sqlite:///{path}`, or move it away to start a new store"
                      if runs else "move it away, or run an experiment: that moves a store without runs aside")
            raise ConfigError(source, f"{path} is not a whole MLflow store of this version ({problem}; {runs} runs): "
                                      f"{advice}")
        aside = path.with_name(f"{path.name}.incomplete-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, aside)
        log.warning("%s was a half-made store (%s) with no run, left by an interrupted command: moved aside "
                    "to %s; a new store is made in its place", path, problem, aside.name)
    if create:
        _create(path, artifact_root or (path.parent / "mlartifacts").as_uri())


def schema_problem(path: Path) -> str | None:
    """Why the sqlite file at ``path`` is not a whole MLflow store of the installed version, or None;
    ``sqlite3.OperationalError`` where it cannot be read now (locked, a hot journal on a read-only file)."""
    try:
        with reading(path) as connection:
            tables = {row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")}
            revision = None
            if "alembic_version" in tables:
                row = connection.execute("select version_num from alembic_version").fetchone()
                revision = row[0] if row else None
    except sqlite3.OperationalError:
        raise
    except sqlite3.DatabaseError as err:  # not a database, malformed
        return f"unreadable: {err}"
    missing = sorted(set(Base.metadata.tables) - tables)
    head = _get_latest_schema_revision()
    if revision != head:
        return f"schema revision {revision or 'none'}, expected {head}"
    if missing:
        return f"missing tables: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"
    return None


def _count(path: Path, table: str) -> int | None:
    """The rows of ``table``: 0 where there is no such table (a store half made), None where the file
    cannot be read as a database; ``sqlite3.OperationalError`` where it cannot be read now."""
    try:
        with reading(path) as connection:
            if not connection.execute("select 1 from sqlite_master where type = 'table' and name = ?",
                                      (table,)).fetchone():
                return 0
            return connection.execute(f"select count(*) from {table}").fetchone()[0]
    except sqlite3.OperationalError:
        raise
    except sqlite3.DatabaseError:
        return None


def _create(path: Path, artifact_root: str) -> None:
    """A fresh store made beside ``path`` (a copy of the template, else MLflow's own migrations: then kept
    as the template, ``runner.tracking.store_template``), flushed to disk, then moved to ``path``.
    MLflow's own experiment 0 (``Default``) becomes ours, ``default``, its artifacts under
    ``artifact_root``: the UI lists one default experiment, not two."""
    attempt = path.with_name(f"{path.name}{CREATING}{os.getpid()}")
    try:
        with interruptions_deferred():  # a Ctrl-C landing in SQLAlchemy's weakref callbacks would be lost
            copied = copy_template(attempt, usable=lambda template: schema_problem(template) is None
                                   and _count(template, "experiments") == 0)  # whole, and no experiment in it
            store = SqlAlchemyStore(f"sqlite:///{attempt}", artifact_root)  # migrates it unless copied
            if not copied:
                keep_as_template(attempt)
            store.rename_experiment("0", DEFAULT_EXPERIMENT)
            store.set_experiment_tag("0", ExperimentTag(*MODEL_TRAINING))
            store.engine.dispose()
            SqlAlchemyStore._engine_map.pop(f"sqlite:///{attempt}", None)
    except (KeyboardInterrupt, Interrupted):  # the attempt is no store: none is left
        attempt.unlink(missing_ok=True)
        raise
    with open(attempt, "rb+") as file:
        os.fsync(file.fileno())
    os.replace(attempt, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _remove_stale_attempts(path: Path) -> None:
    """Files a killed command was making a store in (only the lock's holder makes one)."""
    for stale in path.parent.glob(f"{path.name}{CREATING}*"):
        stale.unlink(missing_ok=True)

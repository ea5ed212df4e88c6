"""A fresh sqlite store copied from an empty one MLflow migrated before, not migrated anew.

MLflow makes a fresh sqlite store by running its fifty-odd schema migrations: ~1 s of one core on a
quiet machine, ~3 s on a busy one, paid by every new directory a user runs in (and by every test).
The first store made on a machine is kept, emptied of its one row (MLflow's default experiment, whose
artifact location is that store's), as a template in the user's cache, one file per schema revision
(``$XDG_CACHE_HOME/backprop-lab/mlflow-store-<revision>.db``).  A later fresh store is a copy of it,
opened by MLflow, which finds every table at the latest revision and creates the default experiment
with the new store's artifact location: what migrating would have made (``tests/test_store_reliability``
compares the two schemas).  A template that is missing, unreadable or not of the installed MLflow's
schema is not used, and a store is migrated as before; so is every store when the cache cannot be
written, or found (no home folder).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
from pathlib import Path

import psutil
from mlflow.store.db.utils import _get_latest_schema_revision

log = logging.getLogger(__name__)


def template_path() -> Path:
    """Where the template of the installed MLflow's schema is kept."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "backprop-lab" / f"mlflow-store-{_get_latest_schema_revision()}.db"


def copy_template(destination: Path, usable) -> bool:
    """``destination`` made a copy of the template when there is one and ``usable(path)`` says it is (a
    whole store of this schema, without experiments); returns whether it was."""
    try:
        template = template_path()
        if not template.is_file() or not usable(template):
            return False
        shutil.copyfile(template, destination)
    except (OSError, RuntimeError, sqlite3.DatabaseError) as err:  # RuntimeError: no home folder
        log.debug("the store template was not used: %r", err)
        return False
    return True


def keep_as_template(store: Path) -> None:
    """The freshly migrated ``store`` (no run in it yet) kept as the template, without its experiments:
    written beside it and moved into place, so that concurrent commands read a whole one or none."""
    try:
        template = template_path()
    except RuntimeError as err:  # no home folder
        log.debug("the store template was not kept: %r", err)
        return
    partial = template.with_name(f"{template.name}.{os.getpid()}")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        for stale in template.parent.glob(f"{template.name}.*"):  # a command killed as it wrote one
            if stale.suffix[1:].isdigit() and not psutil.pid_exists(int(stale.suffix[1:])):
                stale.unlink(missing_ok=True)
        with contextlib.closing(sqlite3.connect(store)) as source, contextlib.closing(sqlite3.connect(partial)) as copy:
            source.backup(copy)  # a consistent copy whatever the journal mode
            with copy:
                copy.execute("delete from experiment_tags")
                copy.execute("delete from experiments")
            copy.execute("vacuum")
        os.replace(partial, template)
    except (OSError, sqlite3.DatabaseError) as err:
        log.debug("the store template %s was not kept: %r", template, err)
        with contextlib.suppress(OSError):  # none was begun where the cache cannot be written
            partial.unlink(missing_ok=True)

"""Where the tracking store is, and whether it can be reached, without importing MLflow
(``import mlflow`` costs over a second; a command refused for its store should not pay it)."""

from __future__ import annotations

import os
import socket
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from .errors import ConfigError

REACH_SECONDS = 3.0  # how long a tracking server or database may take to answer the check
DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every sqlite database file


def embedded_store(cwd: Path | None = None) -> tuple[str, str]:
    """The default store: ``sqlite:///<cwd>/outputs/mlflow.db`` and its artifact root beside it."""
    outputs = (cwd or Path.cwd()).resolve() / "outputs"
    return f"sqlite:///{outputs / 'mlflow.db'}", (outputs / "mlartifacts").as_uri()


def resolve_uri(configured: str | None) -> tuple[str, str | None, str]:
    """``(tracking URI, artifact root for new experiments or None, where the URI was set)``:
    ``tracking.uri`` if set, else ``$MLFLOW_TRACKING_URI``, else the embedded store."""
    if configured:
        return configured, None, f"tracking.uri={configured}"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"], None, f"MLFLOW_TRACKING_URI={os.environ['MLFLOW_TRACKING_URI']}"
    uri, artifacts = embedded_store()
    return uri, artifacts, f"tracking.uri=null (the embedded store {uri})"


def check_store(uri: str, source: str) -> None:
    """The tracking store at ``uri`` can be written (sqlite) or answers within a few seconds
    (a server, a database); ``source`` names where the URI came from (``tracking.uri=...``)."""
    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme == "sqlite":
        _check_sqlite(uri, source)
    elif scheme in ("http", "https"):
        _check_server(uri, source)
    elif scheme in DATABASE_PORTS:
        parsed = urlparse(uri)
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
    path = Path(uri.removeprefix("sqlite:///"))
    if error := write_error(path):
        raise ConfigError(source, f"cannot write the sqlite store {path} ({error})")
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as file:
            if file.read(16) != SQLITE_HEADER:
                raise ConfigError(source, f"{path} is not a sqlite database (an MLflow store is one; "
                                          "a new one is made where no file is)")


def write_error(path: Path, folder: bool = False) -> str | None:
    """Why ``path``, a file (or with ``folder``, a folder), cannot be written, or created with the
    folders it lacks; None if it can.  Tried for real, as root may be refused where permissions allow."""
    if path.exists() and path.is_dir() != folder:
        return f"{path} is a {'file' if folder else 'folder'}"
    if path.is_file():
        try:
            open(path, "ab").close()
        except OSError as err:
            return f"{err.strerror}: {path}"
        return None
    existing = path.absolute()
    while not existing.exists():  # the folders still to create must be creatable in the first that exists
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file"
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as err:
        return f"{err.strerror} in {existing}"
    return None


def _check_server(uri: str, source: str) -> None:
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=REACH_SECONDS) as answer:
            answer.read(64)
    except urllib.error.HTTPError:
        return  # something answers: a server with auth or a proxy; MLflow's own errors will tell more
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ConfigError(source, f"no tracking server answers within {REACH_SECONDS:g} s ({reason})") from None


def _check_port(host: str, port: int, source: str) -> None:
    try:
        socket.create_connection((host, port), timeout=REACH_SECONDS).close()
    except OSError as err:
        raise ConfigError(source, f"no database answers at {host}:{port} within {REACH_SECONDS:g} s ({err})") from None

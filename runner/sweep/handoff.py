"""Files through which the launching process hands its workers, once, what every job of a sweep shares
(a parallel launcher pickles it into every job): ``.<name>-<pid of the launching process>-<random>.pkl``
in the sweep's directory.  A worker reads a file only if its sha256 is the one the launching process
sent (pickle runs what it reads), and a sweep never reads another's."""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
from pathlib import Path

from ..processes import process_alive


def digest(content: bytes) -> str:
    """What a worker checks a file against before it unpickles it."""
    return hashlib.sha256(content).hexdigest()


def write(content: bytes, folder: Path, name: str) -> str:
    """``content`` in a new file named after ``name`` and this process in ``folder``; returns its path.
    The files of that name that sweeps killed with -9 left in ``folder`` are removed first."""
    folder.mkdir(parents=True, exist_ok=True)  # the launcher makes it too
    remove_stale(folder, name)
    descriptor, path = tempfile.mkstemp(prefix=f".{name}-{os.getpid()}-", suffix=".pkl", dir=folder)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    return path


def read(path: str, expected: str | None) -> bytes | None:
    """The file's content if its ``digest`` is ``expected``; None if it is gone (a worker on
    another machine) or another."""
    try:
        content = Path(path).read_bytes()
    except OSError:
        return None
    return content if expected and hmac.compare_digest(digest(content), expected) else None


def remove_stale(folder: Path, name: str) -> None:
    """The files of ``name`` in ``folder`` whose sweep's process is gone (killed with -9)."""
    for path in folder.glob(f".{name}-*.pkl"):
        pid = path.name.removeprefix(f".{name}-").split("-")[0]
        if not pid.isdigit() or not process_alive(int(pid)):
            path.unlink(missing_ok=True)

"""Whether a file or folder can be written, tried for real before any work."""

from __future__ import annotations

import tempfile
from pathlib import Path


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

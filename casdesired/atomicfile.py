"""Writing a file so that no crash, kill -9 or full disk leaves half of it behind.

The content goes to a temporary file in the same directory, is flushed and fsynced, then
``os.replace``-d over the target, and the directory is fsynced so the rename itself is durable.
A reader therefore sees either the old file or the new one. Any failure is a
:class:`~casdesired.errors.FileWriteError` naming what was being written and where.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from casdesired.errors import FileWriteError


def write_atomic(path: Path, write: Callable[[TextIO], object], *, what: str) -> None:
    """Replace ``path`` with what ``write`` puts into the handle it is given."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise FileWriteError(_message(what, path, exc)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise FileWriteError(_message(what, path, exc)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _message(what: str, path: Path, exc: OSError) -> str:
    return f"cannot write {what} to {path}: {exc.strerror or exc}"


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); Windows cannot open a directory, and needs not."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

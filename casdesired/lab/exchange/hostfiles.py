"""The endpoint host's files and folders as the lab keeps them: ``OrgState.files``.

The state document's ``files`` maps a Windows path to the file's text. The agent's lock files
live there (:mod:`.locks`), and so does what the file delivery writes (the agent file, a run's
request). A key ending in a backslash is a folder made with ``mkdir``; a folder also exists
when a file lies under it, and the system's own folders always exist. Paths compare
case-insensitively, as on NTFS, and keep the spelling they were created with.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from casdesired.lab.journal import Journal
from casdesired.lab.process import HostFileError

T = TypeVar("T")

SYSTEM_FOLDERS = ("C:", "C:\\ProgramData", "C:\\Windows", "C:\\Windows\\Temp", "C:\\Users")
"""Folders every Windows Server 2008 R2 host has."""


def _norm(path: str) -> str:
    return path.replace("/", "\\").rstrip("\\")


def parent(path: str) -> str:
    return _norm(path).rpartition("\\")[0]


def leaf(path: str) -> str:
    return _norm(path).rpartition("\\")[2]


@dataclass
class FileTree:
    """Files and folders over ``files`` (the state's map, changed in place)."""

    files: dict[str, str]

    def _key(self, path: str) -> str | None:
        """The stored key of the file ``path``, whatever its case."""
        wanted = _norm(path).casefold()
        return next((k for k in self.files if k.casefold() == wanted), None)

    def is_file(self, path: str) -> bool:
        return self._key(path) is not None

    def is_folder(self, path: str) -> bool:
        folder = _norm(path).casefold()
        if any(folder == s.casefold() for s in SYSTEM_FOLDERS):
            return True
        prefix = folder + "\\"
        return any(k.casefold().startswith(prefix) for k in self.files)

    def read_file(self, path: str) -> str:
        key = self._key(path)
        if key is None:
            raise HostFileError("file", path)
        return self.files[key]

    def write_file(self, path: str, text: str, *, append: bool) -> None:
        if self.is_folder(path):
            raise HostFileError("denied", path)
        if not self.is_folder(parent(path)):
            raise HostFileError("path", path)
        key = self._key(path)
        if key is None:
            self.files[_norm(path)] = text
        else:
            self.files[key] = self.files[key] + text if append else text

    def make_directory(self, path: str) -> None:
        if self.is_file(path) or self.is_folder(path):
            raise HostFileError("exists", path)
        folder = _norm(path)
        while folder and not self.is_folder(folder):
            self.files[folder + "\\"] = ""
            folder = parent(folder)

    def move_file(self, source: str, target: str) -> None:
        key = self._key(source)
        if key is None:
            raise HostFileError("file", source)
        if self.is_folder(target):
            target = _norm(target) + "\\" + leaf(source)
        if not self.is_folder(parent(target)):
            raise HostFileError("path", target)
        text = self.files.pop(key)
        existing = self._key(target)
        if existing is not None:
            del self.files[existing]
        self.files[_norm(target)] = text

    def delete_file(self, path: str) -> None:
        key = self._key(path)
        if key is None:
            raise HostFileError("file", path)
        del self.files[key]


class OrganisationFiles:
    """The organisation's :class:`FileTree` as its processes reach it (a
    :class:`~casdesired.lab.process.HostFiles`): each operation under the organisation's lock,
    saved with its state when it changed something, and journaled (kind ``file``: ``op``,
    ``path``, ``ok`` and, on a failure, ``error``; never a file's content)."""

    def __init__(
        self,
        lock: threading.RLock,
        files: Callable[[], dict[str, str]],
        save: Callable[[], None],
        journal: Callable[[], Journal],
    ) -> None:
        self._lock = lock
        self._files = files
        self._save = save
        self._journal = journal

    def _do(self, op: str, path: str, action: Callable[[FileTree], T], *,
            changes: bool, **details: Any) -> T:
        try:
            with self._lock:
                result = action(FileTree(self._files()))
                if changes:
                    self._save()
        except HostFileError as exc:
            self._journal().record("file", op=op, path=path, ok=False, error=exc.kind,
                                   **details)
            raise
        if changes or op == "read":  # an append of nothing (opening for >>) is not news
            self._journal().record("file", op=op, path=path, ok=True, **details)
        return result

    def read_file(self, path: str) -> str:
        return self._do("read", path, lambda tree: tree.read_file(path), changes=False)

    def write_file(self, path: str, text: str, *, append: bool) -> None:
        self._do("append" if append else "write", path,
                 lambda tree: tree.write_file(path, text, append=append),
                 changes=bool(text) or not append, characters=len(text))

    def make_directory(self, path: str) -> None:
        self._do("mkdir", path, lambda tree: tree.make_directory(path), changes=True)

    def move_file(self, source: str, target: str) -> None:
        self._do("move", source, lambda tree: tree.move_file(source, target), changes=True,
                 target=target)

    def delete_file(self, path: str) -> None:
        self._do("delete", path, lambda tree: tree.delete_file(path), changes=True)

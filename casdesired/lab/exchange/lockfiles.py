"""The endpoint host's files as the lock functions see them: NTFS's rule for exclusive handles.

agent.ps1 opens the lock file with ``[IO.File]::Open(path, mode, ReadWrite, FileShare.None)``:
while one agent holds that handle, every other open fails with a sharing violation. This model
(open, read, write, close, CreateNew) is what :mod:`.locks` runs its step functions against,
so a test can interleave two agents file operation by file operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SHARING_VIOLATION = (
    "The process cannot access the file '{path}' because it is being used by another process."
)

ACCESS_DENIED = "Access to the path '{path}' is denied."


class SharingViolation(Exception):
    """``IOException``: another handle holds the file with ``FileShare.None``."""


class AccessDenied(Exception):
    """``UnauthorizedAccessException``: the folder's access rules refuse this account."""


@dataclass
class Handle:
    path: str
    closed: bool = False


@dataclass
class LockFiles:
    """The endpoint's files with NTFS's share-mode rule for exclusive handles.

    ``files`` is the lab state's file map (path -> text). A path in ``open_paths`` has an
    exclusive handle open; opening it again fails with :class:`SharingViolation`.
    """

    files: dict[str, str]
    open_paths: set[str] = field(default_factory=set)
    writable: bool = True
    """The account may create and write files here; when not, every open for ReadWrite (the
    only kind the lock functions make) is refused, as NTFS refuses it."""

    def open_exclusive(self, path: str, *, create: bool) -> Handle | None:
        """``[IO.File]::Open(path, OpenOrCreate | Open, ReadWrite, None)``; None when the file
        does not exist and ``create`` is false (FileNotFoundException)."""
        if path in self.open_paths:
            raise SharingViolation(SHARING_VIOLATION.format(path=path))
        if path not in self.files and not create:
            return None
        if not self.writable:
            raise AccessDenied(ACCESS_DENIED.format(path=path))
        if path not in self.files:
            self.files[path] = ""
        self.open_paths.add(path)
        return Handle(path)

    def read(self, handle: Handle) -> str:
        self._check(handle)
        return self.files[handle.path]

    def write(self, handle: Handle, text: str) -> None:
        """``SetLength(0)`` then ``Write``: the whole content replaced through the handle."""
        self._check(handle)
        self.files[handle.path] = text

    def close(self, handle: Handle) -> None:
        if not handle.closed:
            handle.closed = True
            self.open_paths.discard(handle.path)

    def create_new(self, path: str, text: str) -> bool:
        """``FileMode.CreateNew``: False if the file exists (the atomic test-and-set)."""
        if path in self.files:
            return False
        self.files[path] = text
        return True

    def _check(self, handle: Handle) -> None:
        if handle.closed or handle.path not in self.open_paths:
            raise ValueError(f"handle on {handle.path} is not open")  # a bug in a step function

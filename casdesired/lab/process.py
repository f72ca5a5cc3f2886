"""The seam between the lab's WS-Man side (cmd.exe, shells) and its Exchange side (PowerShell).

The wire side decodes ``powershell ... -EncodedCommand X`` and hands the script text plus the
command's whole stdin to a :class:`PowerShellHost`; it never interprets PowerShell itself.

What Windows does to a running process from outside is here too, so that neither side needs
the other: the process can be *killed* (WinRM terminates a command's process when its shell is
deleted or the command is signalled to terminate), and it has a *memory* the shell's quota
(``MaxMemoryPerShellMB``) measures, estimated by a :class:`MemoryModel`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ProcessResult:
    """What a finished process left: its stdout and stderr text, and its exit code."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


class PowerShellHost(Protocol):
    def run(self, script: str, stdin: bytes) -> ProcessResult:
        """Run a PowerShell script (decoded from -EncodedCommand) with the given stdin.

        Anything the host does not understand must fail as PowerShell would (an error record
        on stderr as CLIXML and a non-zero exit), never succeed silently. The host calls
        :func:`checkpoint` where a killed process would stop (between the steps it takes).
        """
        ...


@dataclass(frozen=True)
class MemoryUse:
    """A process's estimated peak memory, and what it is made of (for the journal)."""

    megabytes: float
    parts: tuple[tuple[str, float], ...] = ()
    """(what, MB) in the order they add up."""


class MemoryModel(Protocol):
    def estimate(self, script: str, stdin: bytes, result: ProcessResult) -> MemoryUse:
        """The peak memory of the process that ran ``script`` with ``stdin`` and left
        ``result`` (what it wrote shows what it held)."""
        ...


class ProcessKilled(Exception):
    """Raised at a :func:`checkpoint` of a process that was killed: nothing more may run."""


class RunningProcess:
    """One running process as its shell sees it: it can be killed at any moment."""

    def __init__(self) -> None:
        self._killed = threading.Event()

    def kill(self) -> None:
        self._killed.set()

    @property
    def killed(self) -> bool:
        return self._killed.is_set()


_current: ContextVar[RunningProcess | None] = ContextVar("casdesired_lab_process", default=None)


@contextmanager
def running(process: RunningProcess) -> Iterator[None]:
    """Run the ``with`` block (a host's run, in its own thread) as ``process``."""
    token = _current.set(process)
    try:
        yield
    finally:
        _current.reset(token)


def checkpoint() -> None:
    """Where the emulated process would be stopped if it had been killed: raise
    :class:`ProcessKilled` then. Outside a process (a host called directly) it does nothing.

    The lab's processes cannot be stopped in the middle of a step (a cmdlet), only between
    steps; a real one dies wherever it is, so what the lab shows is the latest point it could
    have died.
    """
    process = _current.get()
    if process is not None and process.killed:
        raise ProcessKilled

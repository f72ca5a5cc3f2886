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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

LogonKind = Literal["basic", "ntlm", "kerberos", "credssp"]


@dataclass(frozen=True)
class ProcessResult:
    """What a finished process left: its stdout and stderr text, and its exit code."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


@dataclass(frozen=True)
class Logon:
    """How a WinRM connection logged on, which decides the double hop (field §1).

    Only CredSSP (or Kerberos with delegation, which the lab models as ``credssp``) leaves a
    credential on the server that can reach a third machine as the user; NTLM, Basic and
    Kerberos without delegation do not. The lab speaks NTLM or Basic on the wire; ``kind``
    says which logon it *models* (``kerberos``: a non-delegating Kerberos logon)."""

    user: str = "CONTOSO\\casadmin"
    password: str = field(default="", repr=False)
    """The account's password, to check explicit credentials used inside the session."""
    kind: LogonKind = "ntlm"

    @property
    def delegates(self) -> bool:
        return self.kind == "credssp"


class PowerShellHost(Protocol):
    def run(self, script: str, stdin: bytes) -> ProcessResult:
        """Run a PowerShell script (decoded from -EncodedCommand) with the given stdin.

        Anything the host does not understand must fail as PowerShell would (an error record
        on stderr as CLIXML and a non-zero exit), never succeed silently. The host calls
        :func:`checkpoint` where a killed process would stop (between the steps it takes).
        """
        ...


class HostFileError(Exception):
    """A file operation failed as Windows fails it; ``kind`` says how (cmd.exe and PowerShell
    word it differently)."""

    def __init__(self, kind: Literal["path", "file", "exists", "denied"], path: str) -> None:
        super().__init__(f"{kind}: {path}")
        self.kind = kind
        self.path = path


@runtime_checkable
class HostFiles(Protocol):
    """The endpoint host's file system as its processes reach it: Windows paths, compared
    case-insensitively. Each method raises :class:`HostFileError` as Windows would fail."""

    def read_file(self, path: str) -> str:
        """``kind`` ``file``: no such file (or it is a folder)."""
        ...

    def write_file(self, path: str, text: str, *, append: bool) -> None:
        """``path``: its folder does not exist; ``denied``: it is a folder."""
        ...

    def make_directory(self, path: str) -> None:
        """With every folder above it; ``exists``: a file or folder has that name."""
        ...

    def move_file(self, source: str, target: str) -> None:
        """Replaces a file at ``target``; into it when it is a folder. ``file``: no
        ``source``; ``path``: ``target``'s folder does not exist."""
        ...

    def delete_file(self, path: str) -> None:
        """``file``: no such file."""
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
    """One running process as its shell sees it: it can be killed at any moment, it has an
    environment (the shell's), and what it writes before it ends reaches its shell at once."""

    def __init__(
        self,
        environment: Mapping[str, str] | None = None,
        *,
        reads_stdin: bool = True,
        output: Callable[[str], None] | None = None,
    ) -> None:
        self._killed = threading.Event()
        self.environment: dict[str, str] = dict(environment or {})
        """The process's environment variables (names compare case-insensitively)."""
        self.reads_stdin = reads_stdin
        """False for ``powershell.exe -InputFormat None``: it never reads its redirected stdin."""
        self._output = output
        self.loaded = b""
        """What the process read from files in place of stdin (the memory model counts it)."""

    def kill(self) -> None:
        self._killed.set()

    @property
    def killed(self) -> bool:
        return self._killed.is_set()

    def wait_killed(self, seconds: float) -> bool:
        return self._killed.wait(seconds)

    def getenv(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.environment.items() if k.lower() == lowered), None)

    def unsetenv(self, name: str) -> None:
        for key in [k for k in self.environment if k.lower() == name.lower()]:
            del self.environment[key]

    def write_stdout(self, text: str) -> None:
        """Output written (and flushed) before the process ends: a Receive gets it at once."""
        if self._output is not None:
            self._output(text)


_current: ContextVar[RunningProcess | None] = ContextVar("casdesired_lab_process", default=None)


@contextmanager
def running(process: RunningProcess) -> Iterator[None]:
    """Run the ``with`` block (a host's run, in its own thread) as ``process``."""
    token = _current.set(process)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> RunningProcess | None:
    """The process the calling host code runs as (None when a host is called directly)."""
    return _current.get()


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

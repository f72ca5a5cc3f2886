"""Remote shells and their commands: stdin, output queues, long-poll Receive, and the shell
quotas WinRM enforces (:class:`~casdesired.lab.wsman.limits.WinRMLimits`).

Process model (decided for the lab, see docs/lab.md): a command starts at Command in a worker
thread. Builtins finish at once. A PowerShell command needs its whole stdin: it runs when the
client sends ``End="true"``, or — if the client never sent any stdin — at the first Receive,
because pywinrm's ``run_cmd`` never sends stdin and real PowerShell then reads an empty pipe.

What a process writes before it ends (:meth:`~casdesired.lab.process.RunningProcess.write_stdout`)
reaches the next Receive at once, as a flushed console write does. Every command's process gets
its shell's environment (the host's variables and the Create's ``rsp:Environment``).

As on Windows, deleting a shell or signalling its command to terminate kills the command's
process: the host stops at its next :func:`~casdesired.lab.process.checkpoint` and nothing
more of it runs. A process whose estimated peak memory (the lab's
:class:`~casdesired.lab.process.MemoryModel`) goes over ``MaxMemoryPerShellMB`` dies with
PowerShell's allocation error on stderr, without a response and without a WS-Man fault. Each
process's end is journaled (kind ``process``).
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from casdesired.lab.journal import Journal
from casdesired.lab.process import (
    MemoryModel,
    PowerShellHost,
    ProcessKilled,
    ProcessResult,
    RunningProcess,
    running,
)
from casdesired.lab.wsman.cmdexe import Launch
from casdesired.lab.wsman.limits import WinRMLimits

log = logging.getLogger(__name__)

STREAMS = ("stdout", "stderr")


def codec_for(codepage: int) -> str:
    """The Python codec for a Windows console codepage; ValueError when there is none."""
    name = "utf-8" if codepage == 65001 else f"cp{codepage}"
    codecs.lookup(name)  # raises LookupError for an unknown codepage
    return name


def to_console(text: str, codec: str) -> bytes:
    """Console bytes: ``\\r\\n`` line ends, characters the codepage lacks become ``?``."""
    normalised = text.replace("\r\n", "\n").replace("\n", "\r\n")
    return normalised.encode(codec, errors="replace")


def clixml_error(*lines: str) -> str:
    """stderr of a PowerShell that failed with these lines (its error record), as CLIXML like
    real PowerShell: one ``<S S="Error">`` element per line."""
    elements = "".join(
        '<S S="Error">'
        + line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace("\r\n", "_x000D__x000A_").replace("\n", "_x000D__x000A_")
        + "_x000D__x000A_</S>"
        for line in lines
    )
    return (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/'
        f'2004/04">{elements}</Objs>'
    )


OUT_OF_MEMORY = (
    "Exception of type 'System.OutOfMemoryException' was thrown.",
    "    + CategoryInfo          : OperationStopped: (:) [], OutOfMemoryException",
    "    + FullyQualifiedErrorId : System.OutOfMemoryException",
)
"""PowerShell 2.0's error record when an allocation fails (the shell's job memory quota)."""


def out_of_memory(result: ProcessResult) -> ProcessResult:
    """What a process leaves when its last allocation fails: what it wrote before its last
    piece of output (for the agent: its host lines, not the response it was building), and
    PowerShell's allocation error on stderr with exit code 1."""
    before, newline, _last = result.stdout.rstrip("\r\n").rpartition("\n")
    return ProcessResult(stdout=before + newline, stderr=clixml_error(*OUT_OF_MEMORY), exit_code=1)


@dataclass
class Chunk:
    """What one Receive answers: output pieces, and the exit code once everything is out."""

    pieces: list[tuple[str, bytes]]
    exit_code: int | None


class Command:
    """One command in a shell: its stdin, its pending output and its end."""

    def __init__(
        self, command_id: str, codec: str, environment: Mapping[str, str] | None = None,
        *, reads_stdin: bool = True,
    ) -> None:
        self.id = command_id
        self.codec = codec
        self._cond = threading.Condition()
        self._stdin = bytearray()
        self._stdin_closed = False
        self._saw_send = False
        self._pending: deque[tuple[str, bytes]] = deque()
        self._exit_code: int | None = None
        self._terminated = False
        # Its own copy of the shell's environment (a process may change its own).
        self.process = RunningProcess(environment, reads_stdin=reads_stdin, output=self._write)

    def _write(self, text: str) -> None:
        """What the running process writes and flushes: the next Receive gets it."""
        with self._cond:
            if text:
                self._pending.append(("stdout", to_console(text, self.codec)))
            self._cond.notify_all()

    # stdin -----------------------------------------------------------------------------------
    def send(self, data: bytes, end: bool) -> None:
        with self._cond:
            self._saw_send = True
            if not self._stdin_closed:
                self._stdin.extend(data)
                self._stdin_closed = end
            self._cond.notify_all()

    def close_stdin_if_never_sent(self) -> None:
        with self._cond:
            if not self._saw_send:
                self._stdin_closed = True
                self._cond.notify_all()

    def wait_stdin(self, stop: threading.Event) -> bytes | None:
        """The whole stdin once closed; None if the command was terminated or the lab stops."""
        with self._cond:
            while not self._stdin_closed and not self._terminated and not stop.is_set():
                self._cond.wait(0.2)
            if self._terminated or stop.is_set():
                return None
            return bytes(self._stdin)

    # output ----------------------------------------------------------------------------------
    def finish(self, result: ProcessResult) -> None:
        with self._cond:
            for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
                if text:
                    self._pending.append((name, to_console(text, self.codec)))
            self._exit_code = result.exit_code
            self._cond.notify_all()

    def terminate(self) -> None:
        """Signal terminate, or its shell deleted: the process is killed where it is."""
        self.process.kill()
        with self._cond:
            self._terminated = True
            self._cond.notify_all()

    def receive(self, budget: int, timeout: float, stop: threading.Event) -> Chunk | None:
        """Up to ``budget`` bytes of output, as soon as there is some or the command ended.

        None when ``timeout`` passes first (the caller answers w:TimedOut).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._pending and self._exit_code is None:
                left = deadline - time.monotonic()
                if left <= 0 or stop.is_set():
                    return None
                self._cond.wait(min(left, 0.2))
            pieces: list[tuple[str, bytes]] = []
            room = budget
            while self._pending and room > 0:
                name, data = self._pending.popleft()
                if len(data) > room:
                    self._pending.appendleft((name, data[room:]))
                    data = data[:room]
                pieces.append((name, data))
                room -= len(data)
            done = not self._pending and self._exit_code is not None
            return Chunk(pieces, self._exit_code if done else None)


@dataclass
class Shell:
    id: str
    codec: str
    commands: dict[str, Command]
    last_used: float = 0.0
    """:func:`idle_clock` time of the shell's latest request (IdleTimeout counts from it)."""
    environment: dict[str, str] = field(default_factory=dict)
    """Every command's environment: the host's, and the Create's ``rsp:Environment``."""


class TooManyShells(Exception):
    """A Create over ``MaxShellsPerUser``; ``args[0]`` is the limit."""


def idle_clock() -> float:
    """The clock shells idle by (a module function, so a test can move it)."""
    return time.monotonic()


class ShellTable:
    """All open shells of one lab, safe across request threads, within the lab's quotas."""

    def __init__(
        self, host: PowerShellHost, stop: threading.Event, *,
        limits: WinRMLimits | None = None, memory: MemoryModel | None = None,
        journal: Journal | None = None,
    ) -> None:
        self._host = host
        self._stop = stop
        self.limits = limits or WinRMLimits()
        self._memory = memory
        self._journal = journal
        self._lock = threading.Lock()
        self._shells: dict[str, Shell] = {}

    def create(self, codepage: int, environment: Mapping[str, str] | None = None) -> Shell:
        """A new shell; :class:`TooManyShells` when the user has ``MaxShellsPerUser`` open (the
        lab has one account: every shell is that user's)."""
        shell = Shell(
            str(uuid.uuid4()).upper(), codec_for(codepage), {}, idle_clock(),
            dict(environment or {}),
        )
        self._close_idle()
        limit = self.limits.max_shells_per_user
        with self._lock:
            if len(self._shells) >= limit:
                raise TooManyShells(limit)
            self._shells[shell.id] = shell
        return shell

    def get(self, shell_id: str) -> Shell | None:
        """The shell (its idle time starts again), or None if there is none or it timed out."""
        self._close_idle()
        with self._lock:
            shell = self._shells.get(shell_id.upper())
            if shell is not None:
                shell.last_used = idle_clock()
            return shell

    def delete(self, shell_id: str) -> bool:
        with self._lock:
            shell = self._shells.pop(shell_id.upper(), None)
        if shell is None:
            return False
        for command in list(shell.commands.values()):
            command.terminate()
        return True

    def _close_idle(self) -> None:
        """Close the shells that received no request for ``IdleTimeout``, as WinRM does."""
        deadline = idle_clock() - self.limits.idle_timeout_seconds
        with self._lock:
            idle = [s.id for s in self._shells.values() if s.last_used < deadline]
        for shell_id in idle:
            if self.delete(shell_id) and self._journal is not None:
                self._journal.record("shell", shell_id=shell_id, closed="idle timeout")

    def clear(self) -> None:
        with self._lock:
            ids = list(self._shells)
        for shell_id in ids:
            self.delete(shell_id)

    def __len__(self) -> int:
        self._close_idle()
        with self._lock:
            return len(self._shells)

    def report(self) -> dict[str, Any]:
        """The open shells, for the control API: ``{"open": N, "shells": [{"id", "commands"}]}``.

        A shell stays open until a client deletes it, WinRM's IdleTimeout closes it, or the lab
        resets or stops: on Windows each counts against the user's MaxShellsPerUser meanwhile,
        so tests check that a client leaves none behind.
        """
        self._close_idle()
        with self._lock:
            shells = list(self._shells.values())
        return {
            "open": len(shells),
            "shells": [{"id": s.id, "commands": len(s.commands)} for s in shells],
        }

    def start(self, shell: Shell, launch: Launch) -> Command:
        """Start a command in a worker thread (see the module docstring for when it runs)."""
        command = Command(
            str(uuid.uuid4()).upper(), shell.codec, shell.environment,
            reads_stdin=launch.reads_stdin,
        )
        shell.commands[command.id] = command
        if launch.result is not None:
            command.finish(launch.result)
        else:
            worker = threading.Thread(
                target=self._run_powershell,
                args=(shell.id, command, launch),
                name=f"lab-command-{command.id[:8]}",
                daemon=True,
            )
            worker.start()
        return command

    def _run_powershell(self, shell_id: str, command: Command, launch: Launch) -> None:
        stdin = command.wait_stdin(self._stop)
        if stdin is None:
            return
        script = launch.script or ""
        if launch.script_from_stdin:
            script, stdin = stdin.decode(command.codec, errors="replace"), b""
        run: Callable[[str, bytes], ProcessResult] = self._host.run
        ended: dict[str, Any] = {"shell_id": shell_id, "command_id": command.id}
        try:
            with running(command.process):
                result = run(script, stdin)
        except ProcessKilled:
            self._record(outcome="killed", **ended)
            return
        except Exception as exc:  # a lab bug must surface as a failed command, not a hang
            log.exception("PowerShell host failed")
            result = ProcessResult(stderr=clixml_error(f"lab host error: {exc}"), exit_code=1)
        if self._memory is not None:
            use = self._memory.estimate(script, stdin + command.process.loaded, result)
            ended["memory_mb"] = round(use.megabytes, 1)
            if use.megabytes > self.limits.max_memory_per_shell_mb:
                # The shell's job refuses the allocation that crosses MaxMemoryPerShellMB.
                result = out_of_memory(result)
                ended["outcome"] = "out of memory"
                ended["memory_parts"] = {what: round(mb, 1) for what, mb in use.parts}
        self._record(**{"outcome": "exited", **ended, "exit_code": result.exit_code})
        command.finish(result)

    def _record(self, **data: Any) -> None:
        if self._journal is not None:
            self._journal.record("process", **data)

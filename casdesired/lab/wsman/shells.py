"""Remote shells and their commands: stdin, output queues, long-poll Receive.

Process model (decided for the lab, see docs/lab.md): a command starts at Command in a worker
thread. Builtins finish at once. A PowerShell command needs its whole stdin: it runs when the
client sends ``End="true"``, or — if the client never sent any stdin — at the first Receive,
because pywinrm's ``run_cmd`` never sends stdin and real PowerShell then reads an empty pipe.
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from casdesired.lab.process import PowerShellHost, ProcessResult
from casdesired.lab.wsman.cmdexe import Launch

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


def clixml_error(message: str) -> str:
    """stderr of a PowerShell that failed with ``message``, as CLIXML like real PowerShell."""
    body = (
        message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace("\r\n", "_x000D__x000A_").replace("\n", "_x000D__x000A_")
    )
    return (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/'
        f'2004/04"><S S="Error">{body}_x000D__x000A_</S></Objs>'
    )


@dataclass
class Chunk:
    """What one Receive answers: output pieces, and the exit code once everything is out."""

    pieces: list[tuple[str, bytes]]
    exit_code: int | None


class Command:
    """One command in a shell: its stdin, its pending output and its end."""

    def __init__(self, command_id: str, codec: str) -> None:
        self.id = command_id
        self.codec = codec
        self._cond = threading.Condition()
        self._stdin = bytearray()
        self._stdin_closed = False
        self._saw_send = False
        self._pending: deque[tuple[str, bytes]] = deque()
        self._exit_code: int | None = None
        self._terminated = False

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


class ShellTable:
    """All open shells of one lab, safe across request threads."""

    def __init__(self, host: PowerShellHost, stop: threading.Event) -> None:
        self._host = host
        self._stop = stop
        self._lock = threading.Lock()
        self._shells: dict[str, Shell] = {}

    def create(self, codepage: int) -> Shell:
        shell = Shell(str(uuid.uuid4()).upper(), codec_for(codepage), {})
        with self._lock:
            self._shells[shell.id] = shell
        return shell

    def get(self, shell_id: str) -> Shell | None:
        with self._lock:
            return self._shells.get(shell_id.upper())

    def delete(self, shell_id: str) -> bool:
        with self._lock:
            shell = self._shells.pop(shell_id.upper(), None)
        if shell is None:
            return False
        for command in list(shell.commands.values()):
            command.terminate()
        return True

    def clear(self) -> None:
        with self._lock:
            ids = list(self._shells)
        for shell_id in ids:
            self.delete(shell_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._shells)

    def report(self) -> dict[str, Any]:
        """The open shells, for the control API: ``{"open": N, "shells": [{"id", "commands"}]}``.

        A shell stays open until a client deletes it (or the lab resets or stops): on Windows
        each counts against the user's MaxShellsPerUser until WinRM's idle timeout, so tests
        check that a client leaves none behind.
        """
        with self._lock:
            shells = list(self._shells.values())
        return {
            "open": len(shells),
            "shells": [{"id": s.id, "commands": len(s.commands)} for s in shells],
        }

    def start(self, shell: Shell, launch: Launch) -> Command:
        """Start a command in a worker thread (see the module docstring for when it runs)."""
        command = Command(str(uuid.uuid4()).upper(), shell.codec)
        shell.commands[command.id] = command
        if launch.result is not None:
            command.finish(launch.result)
        else:
            worker = threading.Thread(
                target=self._run_powershell,
                args=(command, launch),
                name=f"lab-command-{command.id[:8]}",
                daemon=True,
            )
            worker.start()
        return command

    def _run_powershell(self, command: Command, launch: Launch) -> None:
        stdin = command.wait_stdin(self._stop)
        if stdin is None:
            return
        script = launch.script or ""
        if launch.script_from_stdin:
            script, stdin = stdin.decode(command.codec, errors="replace"), b""
        run: Callable[[str, bytes], ProcessResult] = self._host.run
        try:
            result = run(script, stdin)
        except Exception as exc:  # a lab bug must surface as a failed command, not a hang
            log.exception("PowerShell host failed")
            result = ProcessResult(stderr=clixml_error(f"lab host error: {exc}"), exit_code=1)
        command.finish(result)

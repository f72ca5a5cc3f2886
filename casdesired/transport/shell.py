"""One WinRM shell for one agent run: opened, its commands run, closed whatever happened.

A run opens exactly one shell (codepage 65001, so non-ASCII names survive; the delivery's
environment variables, if any) on one :class:`~casdesired.transport.session.WinRMSession`, and
runs one or more commands in it one after the other: each is Command, Send (stdin, if any),
Receive until done, Signal. Whatever happens — an error, Ctrl-C — the shell is closed on the
way out (:func:`~casdesired.transport.session.close_shell`), since a shell left open counts
against the account's ``MaxShellsPerUser`` until WinRM's idle timeout.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

import requests
from winrm.exceptions import WinRMOperationTimeoutError, WSManFaultError

from casdesired.errors import AgentNotStarted, ConnectionFailed
from casdesired.transport.session import WinRMSession, close_shell

if TYPE_CHECKING:
    from casdesired.transport.winrm import WinRMTarget

STDIN_CHUNK_BYTES = 64 * 1024
"""Each Send stays well under WinRM's MaxEnvelopeSizekb (150 KB on Windows Server 2008 R2, which
refuses a larger request with HTTP 413): base64 adds a third, the envelope and NTLM sealing
about 2 KB, so a Send is about 90 KB whatever the organisation's size."""


@dataclass(frozen=True)
class Output:
    """What one command left: its stdout and stderr bytes, and its exit code."""

    stdout: bytes
    stderr: bytes
    exit_code: int


class NotStartedInTime(Exception):
    """The command's output did not show ``marker`` before its start deadline."""


class AgentShell:
    """The run's shell (a context manager). ``requests``: WS-Man operations sent;
    ``commands``: commands started. Before a command is started, a failure raises
    :class:`AgentNotStarted` (nothing of the run ran); :meth:`started` says which command is
    the one that runs the agent, after which failures are plain :class:`ConnectionFailed`."""

    def __init__(
        self,
        target: WinRMTarget,
        *,
        environment: Mapping[str, str] | None = None,
        warn: Callable[[str], None],
        observe: Callable[[requests.Response], None] | None = None,
    ) -> None:
        self.target = target
        self.observe = observe
        """Shown every HTTP answer of the run's session (casdesired doctor)."""
        self.environment = dict(environment or {})
        self.warn = warn
        self.requests = 0
        self.commands = 0
        self.agent_started = False
        """An agent command started, and has not said it ran nothing: failures from here on
        may come after the agent did something."""
        self.agent_commands = 0
        self._session: WinRMSession | None = None
        self._shell_id: str | None = None
        self._command_id: str | None = None

    def __enter__(self) -> AgentShell:
        self._session = WinRMSession(self.target, observe=self.observe)
        try:
            with self._not_started():
                self._shell_id = self._session.op(
                    "opening a shell", self._session.proto.open_shell, codepage=65001,
                    noprofile=True, env_vars=self.environment or None,
                )
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._close()

    def _close(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        # Also after Ctrl-C: a shell left open counts against the account's shell quota.
        notice = close_shell(session, self._shell_id, self._command_id)
        self.requests += session.requests
        if notice:
            self.warn(notice)

    @contextlib.contextmanager
    def _not_started(self) -> Iterator[None]:
        """Failures before the agent's command started: nothing of the run ran."""
        try:
            yield
        except ConnectionFailed as exc:
            if self.agent_started or isinstance(exc, AgentNotStarted):
                raise
            raise AgentNotStarted(str(exc)) from None

    @property
    def intact(self) -> bool:
        """The shell is open and its session can go on (see :class:`WinRMSession`)."""
        return self._session is not None and self._shell_id is not None and (
            self._session.intact
        )

    def _open(self) -> tuple[WinRMSession, str]:
        if self._session is None or self._shell_id is None:
            raise RuntimeError("the shell is not open")  # a casdesired bug
        return self._session, self._shell_id

    def start(self, step: str, executable: str, arguments: list[str], *, agent: bool) -> str:
        """Start a command (``agent``: the one that runs the agent); its id."""
        session, shell_id = self._open()
        with self._not_started():
            command_id: str = session.op(
                step, session.proto.run_command, shell_id, executable, arguments
            )
        self._command_id = command_id
        self.commands += 1
        if agent:
            self.agent_started = True
            self.agent_commands += 1
        return command_id

    def send(self, command_id: str, data: bytes) -> None:
        """The command's whole stdin, in Sends under MaxEnvelopeSize, then closed."""
        session, shell_id = self._open()
        chunks = [data[i : i + STDIN_CHUNK_BYTES] for i in range(0, len(data), STDIN_CHUNK_BYTES)]
        for index, chunk in enumerate(chunks or [b""]):
            session.op(
                "sending the request", session.proto.send_command_input, shell_id,
                command_id, chunk, end=index == len(chunks) - 1 or not chunks,
            )

    def receive(
        self, command_id: str, step: str, *, started_by: tuple[str, float] | None = None,
        on_stdout: Callable[[bytes], None] | None = None,
    ) -> Output:
        """Collect the command's output until it is done (pywinrm's own loop would wait
        forever), at most ``command_timeout`` in all. ``started_by`` = (marker, seconds): raise
        :class:`NotStartedInTime` if stdout has not shown ``marker`` by then. ``on_stdout`` is
        shown each piece of stdout as its Receive brings it, while the command still runs."""
        session, shell_id = self._open()
        now = time.monotonic()
        deadline = now + self.target.command_timeout
        marker, start_deadline = (
            (started_by[0].encode("ascii"), now + started_by[1]) if started_by else (None, 0.0)
        )
        stdout: list[bytes] = []
        stderr: list[bytes] = []
        while True:
            try:
                out, err, code, done = session.op(
                    step, session.proto.get_command_output_raw, shell_id, command_id
                )
            except WinRMOperationTimeoutError:
                # No output within the OperationTimeout: normal while the agent works.
                done, out, err, code = False, b"", b"", -1
            stdout.append(out)
            stderr.append(err)
            if out and on_stdout is not None:
                on_stdout(out)
            if marker is not None and marker in b"".join(stdout):
                marker = None
            if done:
                return Output(b"".join(stdout), b"".join(stderr), code)
            if marker is not None and time.monotonic() > start_deadline:
                raise NotStartedInTime
            if time.monotonic() > deadline:
                raise ConnectionFailed(
                    f"the agent on {self.target.url} did not finish within "
                    f"{self.target.command_timeout:g} s; casdesired stopped waiting"
                )

    def finish(self, command_id: str) -> None:
        """Signal the finished command (as pywinrm's run_cmd does), so the next can start."""
        session, shell_id = self._open()

        def signal() -> None:
            # A fault here means the command is gone already: nothing to clean.
            with contextlib.suppress(WSManFaultError):
                session.proto.cleanup_command(shell_id, command_id)

        session.op("cleaning up a command", signal)
        if self._command_id == command_id:
            self._command_id = None

    def run(self, step: str, line: str) -> Output:
        """A builtin command line to its end (cmd.exe: no stdin, output at once)."""
        command_id = self.start(step, line, [], agent=False)
        with self._not_started():
            output = self.receive(command_id, step)
            self.finish(command_id)
        return output

"""The WS-Man operations on shells: Create, Command, Send, Receive, Signal, Delete.

Takes a parsed :class:`~casdesired.lab.wsman.envelope.Request`, answers with a response
envelope or raises :class:`~casdesired.lab.wsman.envelope.WSManFault`. HTTP, authentication,
encryption and injected faults are the handler's business, not this module's.
"""

from __future__ import annotations

import base64
import binascii
import threading

from casdesired.lab.journal import Journal
from casdesired.lab.process import HostFiles
from casdesired.lab.wsman import envelope as env
from casdesired.lab.wsman.cmdexe import command_line, interpret
from casdesired.lab.wsman.envelope import NS_SHELL, Request, WSManFault, q
from casdesired.lab.wsman.shells import STREAMS, Command, Shell, ShellTable, TooManyShells

SIZE_MARGIN = 64
"""Bytes kept free under MaxEnvelopeSize, so a rounding slip can never cross the limit."""


def system_environment(hostname: str) -> dict[str, str]:
    """The variables every process of the lab's Windows host has (cmd.exe expands them)."""
    return {
        "ComputerName": hostname,
        "ProgramData": "C:\\ProgramData",
        "SystemDrive": "C:",
        "SystemRoot": "C:\\Windows",
        "TEMP": "C:\\Windows\\Temp",
        "TMP": "C:\\Windows\\Temp",
    }


def _environment(request: Request) -> dict[str, str]:
    """The Create's ``rsp:Environment`` (winrs ``-env``): its variables, for every command of
    the shell. Their values are never journaled (a client may pass a secret this way)."""
    shell = request.body.find(q(NS_SHELL, "Shell"))
    environment = shell.find(q(NS_SHELL, "Environment")) if shell is not None else None
    if environment is None:
        return {}
    variables: dict[str, str] = {}
    for variable in environment.findall(q(NS_SHELL, "Variable")):
        name = variable.get("Name") or ""
        if name:
            variables[name] = variable.text or ""
    return variables


class WSManService:
    def __init__(
        self, shells: ShellTable, journal: Journal, hostname: str, endpoint: str,
        stop: threading.Event, files: HostFiles | None = None,
    ) -> None:
        self.shells = shells
        self.journal = journal
        self.hostname = hostname
        self.endpoint = endpoint
        self._stop = stop
        self.files = files
        """The host's files, as cmd.exe's builtins reach them (None: a host without any)."""

    def handle(self, request: Request) -> bytes:
        limits = self.shells.limits
        # MaxTimeoutms caps every OperationTimeout (no fault: the service just waits less), and
        # MaxEnvelopeSizekb every answer, whatever larger MaxEnvelopeSize the client offers.
        request.operation_timeout = min(request.operation_timeout, limits.max_timeout_seconds)
        request.max_envelope_size = min(request.max_envelope_size, limits.max_envelope_bytes)
        operation = {
            "Create": self._create,
            "Command": self._command,
            "Send": self._send,
            "Receive": self._receive,
            "Signal": self._signal,
            "Delete": self._delete,
        }.get(request.action)
        if operation is None:
            raise env.action_not_supported(request.action)
        return operation(request)

    # -----------------------------------------------------------------------------------------
    def _shell(self, request: Request) -> Shell:
        if not request.shell_id:
            raise env.invalid_request("the ShellId selector is missing")
        shell = self.shells.get(request.shell_id)
        if shell is None:
            raise env.unknown_shell(request.shell_id)
        return shell

    @staticmethod
    def _command_of(shell: Shell, command_id: str | None) -> Command:
        command = shell.commands.get((command_id or "").upper())
        if command is None:
            raise env.unknown_command(command_id or "")
        return command

    def _create(self, request: Request) -> bytes:
        if request.body.find(q(NS_SHELL, "Shell")) is None:
            raise env.invalid_request("the body has no rsp:Shell")
        raw = request.options.get("WINRS_CODEPAGE", "437")
        environment = {**system_environment(self.hostname), **_environment(request)}
        try:
            shell = self.shells.create(int(raw), environment)
        except (ValueError, LookupError):
            raise WSManFault(
                "w:InvalidOptions", 2150858882,
                f"The WinRS client cannot process the request. The codepage {raw} is not valid. ",
            ) from None
        except TooManyShells as quota:
            raise env.too_many_shells(quota.args[0]) from None
        request.shell_id = shell.id  # so the handler journals the new shell
        return env.response(request, env.resource_created_body(self.endpoint, shell.id))

    def _command(self, request: Request) -> bytes:
        shell = self._shell(request)
        line_el = request.body.find(q(NS_SHELL, "CommandLine"))
        command_el = line_el.find(q(NS_SHELL, "Command")) if line_el is not None else None
        if line_el is None or command_el is None:
            raise env.invalid_request("the body has no rsp:CommandLine/rsp:Command")
        arguments = " ".join(a.text or "" for a in line_el.findall(q(NS_SHELL, "Arguments")))
        line = command_line((command_el.text or "").strip(), arguments or None)
        launch = interpret(line, self.hostname, shell.environment, self.files)
        command = self.shells.start(shell, launch)
        self.journal.record(
            "command", command_line=line, shell_id=shell.id, command_id=command.id,
            **launch.journal,
        )
        return env.response(request, env.command_response_body(command.id))

    def _send(self, request: Request) -> bytes:
        shell = self._shell(request)
        send_el = request.body.find(q(NS_SHELL, "Send"))
        if send_el is None:
            raise env.invalid_request("the body has no rsp:Send")
        for stream in send_el.findall(q(NS_SHELL, "Stream")):
            if stream.get("Name") != "stdin":
                raise env.invalid_request(f"cannot send to stream {stream.get('Name')!r}")
            command = self._command_of(shell, stream.get("CommandId"))
            try:
                data = base64.b64decode((stream.text or "").strip(), validate=True)
            except binascii.Error:
                raise env.invalid_request("stdin is not base64") from None
            command.send(data, end=stream.get("End", "false").lower() == "true")
        return env.response(request, "<rsp:SendResponse/>")

    def _receive(self, request: Request) -> bytes:
        shell = self._shell(request)
        desired = request.body.find(f"{q(NS_SHELL, 'Receive')}/{q(NS_SHELL, 'DesiredStream')}")
        if desired is None:
            raise env.invalid_request("the body has no rsp:Receive/rsp:DesiredStream")
        command = self._command_of(shell, desired.get("CommandId"))
        command.close_stdin_if_never_sent()
        budget = self._output_budget(request, command.id)
        chunk = command.receive(budget, request.operation_timeout, self._stop)
        if chunk is None:
            raise env.timed_out()
        parts = [
            env.stream_element(name, command.id, base64.b64encode(data).decode("ascii"))
            for name, data in chunk.pieces
        ]
        if chunk.exit_code is not None:
            parts += [env.stream_element(name, command.id, end=True) for name in STREAMS]
        parts.append(env.command_state_element(command.id, chunk.exit_code))
        body = "<rsp:ReceiveResponse>" + "".join(parts) + "</rsp:ReceiveResponse>"
        return env.response(request, body)

    @staticmethod
    def _output_budget(request: Request, command_id: str) -> int:
        """Raw output bytes that fit one ReceiveResponse under the request's MaxEnvelopeSize.

        The largest answer is a Done with two End streams and (at most) one stdout and one
        stderr piece; base64 turns every 3 raw bytes into 4 characters.
        """
        skeleton = "<rsp:ReceiveResponse>" + "".join(
            [env.stream_element(name, command_id, "") for name in STREAMS]
            + [env.stream_element(name, command_id, end=True) for name in STREAMS]
            + [env.command_state_element(command_id, -2147483648)]
        ) + "</rsp:ReceiveResponse>"
        fixed = len(env.response(request, skeleton)) + 2 * len("></rsp:Stream>")
        room = request.max_envelope_size - fixed - SIZE_MARGIN
        budget = (room // 4 - 2) * 3
        if budget < 3:
            raise WSManFault(
                "w:EncodingLimit", 2150858828,
                "The response that the WS-Management service computed exceeds the maximum "
                "envelope size in the request. ",
            )
        return budget

    def _signal(self, request: Request) -> bytes:
        shell = self._shell(request)
        signal_el = request.body.find(q(NS_SHELL, "Signal"))
        if signal_el is None:
            raise env.invalid_request("the body has no rsp:Signal")
        command = self._command_of(shell, signal_el.get("CommandId"))
        # terminate and ctrl_c both end the command here: the lab's processes are not
        # interruptible and their output is dropped with them.
        command.terminate()
        shell.commands.pop(command.id, None)
        return env.response(request, "<rsp:SignalResponse/>")

    def _delete(self, request: Request) -> bytes:
        if not request.shell_id or not self.shells.delete(request.shell_id):
            raise env.unknown_shell(request.shell_id or "")
        return env.response(request, "")

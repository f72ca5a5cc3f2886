"""The lab's agent: executes a request as casdesired/agent/agent.ps1 does on Windows.

Every branch mirrors agent.ps1 (read it side by side): session mode and module loading, the
Exchange 2013 refusal, the allow-list of cmdlets, ``& $cmdlet @parameters -ErrorAction Stop``
per invocation, property selection (a property the object lacks is left out), ``group_by``
counts, ``until`` polling, ``for_each`` fan-outs (:mod:`.agent_fanout`), ``on_error``, the
request's ``keepalive`` (run between
invocations and between polls whenever its interval has passed; its failure stops the run)
and its ``fence`` (before each write, the request's lock must still be the current lock).
Loading what a request needs (the Exchange session, modules, version, recipient scope) is
:mod:`.agent_loading`. Texts the agent itself produces are the same strings as in agent.ps1.
Cmdlets run through a :class:`CmdletRunner` (the Organisation), never as script text.
A process killed by WinRM (its shell deleted, or a Signal terminate) stops between invocations
and between the polls of an ``until``: :func:`casdesired.lab.process.checkpoint`.
Write-AgentProgress's lines (:func:`casdesired.agent.framing.progress_line`, as each invocation
starts and at each poll of an ``until``) are flushed at once, as agent.ps1 flushes them: they
reach the shell's next Receive while the agent still runs (:func:`_write_progress`).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass, replace

from casdesired import jsontext
from casdesired.agent.framing import progress_line
from casdesired.agent.protocol import (
    FENCED,
    KEEPALIVE_FAILED,
    NOT_A_READ,
    PROTOCOL_VERSION,
    Credential,
    Invocation,
    InvocationError,
    Keepalive,
    Request,
    Response,
    Result,
    is_allowed,
    is_fenced,
    is_read,
)
from casdesired.errors import ProtocolError
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.agent_fanout import Run
from casdesired.lab.exchange.agent_fanout import runs as fanned_out
from casdesired.lab.exchange.agent_loading import EXCHANGE_TOO_NEW as EXCHANGE_TOO_NEW
from casdesired.lab.exchange.agent_loading import Steps, load
from casdesired.lab.exchange.agent_values import as_date, counted, group_key, ps_number, select
from casdesired.lab.exchange.binding import LabValue, Obj, Provider
from casdesired.lab.exchange.runner import CmdletRunner, Sessions
from casdesired.lab.process import checkpoint, current

_CMDLET_NAME = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+$")

# The agent's own texts, exactly as agent.ps1 writes them.
BAD_REQUEST = "casdesired: the request is not valid base64 JSON."
BAD_CREDENTIAL = "casdesired: the credential is not valid base64 JSON."
WRONG_PROTOCOL = "casdesired: this agent speaks protocol {ours}, the request protocol {theirs}."

UNKNOWN_MODE = "casdesired: unknown Exchange session mode '{mode}'."
NOT_A_CMDLET = "casdesired: '{name}' is not a cmdlet name."
UNTIL_TIMEOUT = (
    "casdesired: timed out after {timeout} seconds waiting for {property} to be one of: "
    "{values}."
)


@dataclass
class AgentRun:
    """What one agent run produced: the response, and what else it printed on stdout."""

    response: Response
    host_lines: list[str]


def decode_request(payload: str) -> Request:
    """The request the bootstrap hands the agent, with agent.ps1's fatal texts on failure."""
    try:
        data = jsontext.loads(base64.b64decode(payload.strip(), validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ProtocolError(BAD_REQUEST) from None
    if not isinstance(data, dict):
        raise ProtocolError(BAD_REQUEST)
    if str(data.get("protocol", "")) != str(PROTOCOL_VERSION):
        theirs = data.get("protocol", "?")
        raise ProtocolError(WRONG_PROTOCOL.format(ours=PROTOCOL_VERSION, theirs=theirs))
    mode = (data.get("exchange") or {}).get("mode", "snapin")
    if mode not in ("snapin", "remote", "none"):
        raise ProtocolError(UNKNOWN_MODE.format(mode=mode))
    try:
        return Request.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"casdesired: the request is malformed: {exc}") from None


def run_payload(
    runner: CmdletRunner, payload: str, credential: str = "", *, probes: bool = False
) -> AgentRun:
    """Decode the request the bootstrap handed over and execute it (a bad request is a
    ``fatal``). ``credential``: agent.ps1's ``-CredentialBase64`` (the file delivery's), used
    when the request carries none."""
    try:
        request = decode_request(payload)
        if request.credential is None and credential:
            request = replace(request, credential=_decode_credential(credential))
    except ProtocolError as exc:
        return AgentRun(_response(runner, [], None, fatal=str(exc)), [])
    return execute(runner, request, probes=probes)


def _decode_credential(text: str) -> Credential:
    try:
        data = jsontext.loads(base64.b64decode(text.strip(), validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ProtocolError(BAD_CREDENTIAL) from None
    if not isinstance(data, dict):
        raise ProtocolError(BAD_CREDENTIAL)
    return Credential.from_json(data)


def execute(runner: CmdletRunner, request: Request, *, probes: bool = False) -> AgentRun:
    """Execute ``request`` as agent.ps1 would against ``runner``; ``probes``: the script came
    with probes.ps1 (a diagnose request's), so the probe functions are defined."""
    host_lines: list[str] = []
    sessions = Sessions(runner, request)
    steps = Steps(request.diagnose)
    try:
        run = _execute(runner, request, sessions, host_lines, steps, probes)
    finally:
        # Remove-PSSession, in agent.ps1's finally; the response is written after it, so it
        # reports the removal too.
        if sessions.close():
            steps.record("exchange-session-removed", None, "")
    return AgentRun(replace(run.response, loading=tuple(steps.steps)), run.host_lines)


def _execute(
    runner: CmdletRunner,
    request: Request,
    sessions: Sessions,
    host_lines: list[str],
    steps: Steps,
    probes: bool,
) -> AgentRun:
    results: list[Result] = []
    loading = load(runner, request, sessions, host_lines, steps, probes)
    if loading.fatal is not None:
        return AgentRun(
            _response(runner, [], loading.version, fatal=loading.fatal), host_lines
        )
    frozen, version = loading.loaded, loading.version
    keepalive = _Keepalive(runner, request.keepalive, frozen, host_lines, sessions)
    stop = False
    for position, invocation in enumerate(request.invocations, start=1):
        for run in fanned_out(invocation, results):  # one, or one per computer of a fan-out
            stop = True
            checkpoint()  # a killed process runs nothing more
            if not keepalive.run_if_due():
                break  # nothing more runs: later invocations have no result
            if not keepalive.fence_passes(request.fence, run.invocation):
                break  # its lock was broken or taken over: no more writes
            shown = position if request.progress else 0  # Write-AgentProgress's check
            if shown:
                _write_progress(host_lines, shown)
            result = _refusal(run) if run.refused else _run_invocation(
                runner, run.invocation, frozen, host_lines, keepalive, sessions, request.diagnose,
                shown)
            results.append(result)
            if keepalive.stopped is not None:
                break  # it failed while this invocation polled
            if not result.ok and invocation.on_error != "continue":
                break
            stop = False
        if stop:
            break
    response = _response(runner, results, version, fatal=None)
    response = replace(response, stopped=keepalive.stopped, keepalives=keepalive.runs)
    return AgentRun(response, host_lines)


class _Keepalive:
    """Invoke-AgentKeepalive: the request's keepalive, run whenever its interval has passed."""

    def __init__(
        self,
        runner: CmdletRunner,
        keepalive: Keepalive | None,
        loaded: frozenset[Provider],
        host_lines: list[str],
        sessions: Sessions,
    ) -> None:
        self.runner = runner
        self.keepalive = keepalive
        self.loaded = loaded
        self.host_lines = host_lines
        self.sessions = sessions
        self.last = runner.monotonic()
        self.runs = 0
        self.stopped: str | None = None

    def run_if_due(self) -> bool:
        """False once the keepalive has failed: the caller must run nothing more."""
        if self.stopped is not None:
            return False
        if self.keepalive is None:
            return True
        if self.runner.monotonic() - self.last < self.keepalive.interval_seconds:
            return True
        invocation = self.keepalive.invocation
        self.runs += 1
        result = _run_invocation(
            self.runner, invocation, self.loaded, self.host_lines, None, self.sessions
        )
        self.last = self.runner.monotonic()
        if result.ok:
            return True
        message = result.error.message if result.error else "no result"
        self.stopped = KEEPALIVE_FAILED.format(cmdlet=invocation.cmdlet, message=message)
        return False

    def fence_passes(self, fence: str | None, invocation: Invocation) -> bool:
        """Invoke-AgentFence: before a write of a fenced request, its lock must be current.
        False (with ``stopped`` set) when it is not, or cannot be told."""
        if not fence or not is_fenced(invocation.cmdlet):
            return True
        try:
            self.runner.check_fence(fence, invocation.cmdlet)
        except err.ExchangeError as exc:
            detail = exc.message.removeprefix("casdesired: ")  # as agent.ps1 strips it
            self.stopped = FENCED.format(cmdlet=invocation.cmdlet, message=detail)
            return False
        return True


def _response(
    runner: CmdletRunner, results: list[Result], version: str | None, *, fatal: str | None
) -> Response:
    return Response(
        results=tuple(results),
        host=runner.hostname,
        ps_version=runner.settings.host_powershell_version,
        exchange_version=version,
        fatal=fatal,
    )


def _run_invocation(
    runner: CmdletRunner,
    invocation: Invocation,
    loaded: frozenset[Provider],
    host_lines: list[str],
    keepalive: _Keepalive | None,
    sessions: Sessions,
    diagnose: bool = False,
    position: int = 0,
) -> Result:
    """Invoke-AgentInvocation; ``position``: the invocation's place in the request, for the
    progress line of each poll of an ``until`` (0: none, for the keepalive or a request that
    asks for no progress)."""
    objects: list[Obj] = []
    try:
        if not _CMDLET_NAME.match(invocation.cmdlet):
            raise _thrown(NOT_A_CMDLET.format(name=invocation.cmdlet))
        if not is_allowed(invocation.cmdlet):
            # Refused as PowerShell refuses an unknown command, before anything runs.
            raise err.CommandNotFound(invocation.cmdlet)
        if diagnose and not is_read(invocation.cmdlet):
            raise _thrown(NOT_A_READ.format(cmdlet=invocation.cmdlet))
        session = sessions.for_invocation(invocation)
        if session is not sessions.main:
            # A node's PSSession has only what the remote script block imports there: the
            # request's modules, each where that computer has it installed.
            loaded = sessions.node_modules(session)
        # agent.ps1 sets ErrorAction itself, over any value the request carried.
        parameters: dict[str, LabValue] = {
            k: v for k, v in invocation.parameters.items() if k.lower() != "erroraction"
        }
        for date in invocation.dates:  # a hashtable's keys: case-insensitive
            key = next((k for k in parameters if k.lower() == date.lower()), None)
            if key is not None:
                parameters[key] = as_date(date, parameters[key])
        if invocation.group_by is not None:
            output = runner.invoke(invocation.cmdlet, parameters, loaded, session)
            host_lines += output.host_lines
            groups = counted(output.objects, invocation.group_by)
            return Result(id=invocation.id, ok=True, objects=(), groups=groups)
        if invocation.until is not None:
            until = invocation.until
            wanted = {v.lower() for v in until.values}
            deadline = runner.monotonic() + until.timeout_seconds
            while True:
                output = runner.invoke(invocation.cmdlet, parameters, loaded, session)
                host_lines += output.host_lines
                objects, pending = [], 0
                for obj in output.objects:
                    objects.append(select(obj, invocation.properties, invocation.expand))
                    if group_key(obj, until.property).lower() not in wanted:
                        pending += 1
                if pending == 0:
                    break
                if runner.monotonic() >= deadline:
                    raise _thrown(UNTIL_TIMEOUT.format(
                        timeout=ps_number(until.timeout_seconds),
                        property=until.property,
                        values=", ".join(until.values),
                    ))
                if position > 0:
                    left = max(0, math.floor(deadline - runner.monotonic()))
                    _write_progress(host_lines, position, left)
                runner.sleep(until.interval_seconds)
                checkpoint()
                if keepalive is not None and not keepalive.run_if_due():
                    raise _thrown(keepalive.stopped or "")
            return Result(id=invocation.id, ok=True, objects=tuple(objects))
        output = runner.invoke(invocation.cmdlet, parameters, loaded, session)
        host_lines += output.host_lines
        selected = tuple(
            select(obj, invocation.properties, invocation.expand) for obj in output.objects
        )
        return Result(id=invocation.id, ok=True, objects=selected)
    except err.ExchangeError as exc:
        error = InvocationError(message=exc.message, category=exc.category, target=exc.target)
        return Result(id=invocation.id, ok=False, objects=tuple(objects), error=error)


def _write_progress(host_lines: list[str], position: int, left: int | None = None) -> None:
    """Write-AgentProgress (for a request that asks for progress): flushed at once to the
    running process's stdout (a Receive gets it while the agent runs); with no process around
    (an organisation called directly), in order among the run's other host lines."""
    line = progress_line(position, left)
    process = current()
    if process is None:
        host_lines.append(line)
    else:
        process.write_stdout(line + "\r\n")


def _refusal(run: Run) -> Result:
    """New-AgentRefusal: the failed result of a run that is not run at all."""
    thrown = _thrown(run.refused)
    error = InvocationError(message=thrown.message, category=thrown.category,
                            target=thrown.target)
    return Result(id=run.invocation.id, ok=False, objects=(), error=error)


def _thrown(message: str) -> err.ExchangeError:
    """What ``throw "text"`` makes in PowerShell: a RuntimeException whose target is the text."""
    return err.ExchangeError(message, target=message, category="RuntimeException")

"""The lab's agent: executes a request as casdesired/agent/agent.ps1 does on Windows.

Every branch mirrors agent.ps1 (read it side by side): session mode and module loading, the
Exchange 2013 refusal, the allow-list of cmdlets, ``& $cmdlet @parameters -ErrorAction Stop``
per invocation, property selection (a property the object lacks is left out), ``group_by``
counts, ``until`` polling, ``on_error``, the request's ``keepalive`` (run between
invocations and between polls whenever its interval has passed; its failure stops the run)
and its ``fence`` (before each write, the request's lock must still be the current lock).
Texts the agent itself produces are the same strings as in agent.ps1.
Cmdlets run through a :class:`CmdletRunner` (the Organisation), never as script text.
A process killed by WinRM (its shell deleted, or a Signal terminate) stops between invocations
and between the polls of an ``until``: :func:`casdesired.lab.process.checkpoint`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import urlsplit

from casdesired.agent.protocol import (
    ALLOWED_CMDLETS,
    FENCED,
    KEEPALIVE_FAILED,
    NOT_A_READ,
    PROTOCOL_VERSION,
    Invocation,
    InvocationError,
    JsonValue,
    Keepalive,
    LoadStep,
    ParamValue,
    Request,
    Response,
    Result,
    is_allowed,
    is_fenced,
    is_read,
)
from casdesired.errors import ProtocolError
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.binding import Obj, Provider, Session
from casdesired.lab.exchange.models import Behaviour
from casdesired.lab.process import Logon, checkpoint

PS_VERSION = "2.0"
NLB_MODULE = "NetworkLoadBalancingClusters"
_CMDLET_NAME = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+$")
_VERSION_MAJOR = re.compile(r"Version\s+(\d+)\.")

# The agent's own texts, exactly as agent.ps1 writes them.
BAD_REQUEST = "casdesired: the request on stdin is not valid base64 JSON."
WRONG_PROTOCOL = "casdesired: this agent speaks protocol {ours}, the request protocol {theirs}."
UNKNOWN_MODE = "casdesired: unknown Exchange session mode '{mode}'."
NOT_A_CMDLET = "casdesired: '{name}' is not a cmdlet name."
UNTIL_TIMEOUT = (
    "casdesired: timed out after {timeout} seconds waiting for {property} to be one of: "
    "{values}."
)
EXCHANGE_TOO_NEW = (
    "Exchange Server 2013 or later detected on {host} ({version}): "
    "casdesired manages Exchange 2010 only."
)
REMOTE_CONNECT_FAILED = (
    "Connecting to remote server {host} failed with the following error message : The WinRM "
    "client cannot process the request because the server name cannot be resolved."
)


@dataclass
class CmdletOutput:
    objects: Iterable[Obj]
    host_lines: list[str] = field(default_factory=list)
    """What the cmdlet printed to the host: ``WARNING: ...`` and ``What if: ...`` lines."""


class CmdletRunner(Protocol):
    """The organisation as the agent sees it."""

    @property
    def hostname(self) -> str: ...

    @property
    def logon(self) -> Logon:
        """How the WinRM connection logged on (whether it can delegate: the double hop)."""
        ...

    def invoke(
        self,
        cmdlet: str,
        parameters: Mapping[str, ParamValue],
        loaded: frozenset[Provider],
        session: Session | None = None,
    ) -> CmdletOutput:
        """Run one cmdlet in ``session``; raise :class:`~.errors.ExchangeError` as it would
        fail."""
        ...

    def has_server(self, name: str) -> bool: ...

    def reachable(self, name: str) -> bool:
        """Whether other computers reach server ``name`` over the network."""
        ...

    def has_module(self, name: str, module: str) -> bool:
        """Whether PowerShell module ``module`` is installed on server ``name``."""
        ...

    @property
    def settings(self) -> Behaviour: ...

    def credential_valid(self, username: str, password: str) -> bool: ...

    def open_exchange_session(self, user: str) -> bool: ...

    def close_exchange_session(self, user: str) -> None: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def check_fence(self, lock_id: str, cmdlet: str) -> None:
        """Assert-CasdesiredFence before ``cmdlet``: raise :class:`~.errors.ExchangeError` with
        the lock check's text unless ``lock_id`` is the organisation's current lock."""
        ...


@dataclass
class AgentRun:
    """What one agent run produced: the response, and what else it printed on stdout."""

    response: Response
    host_lines: list[str]


def decode_request(payload: str) -> Request:
    """The request the bootstrap hands the agent, with agent.ps1's fatal texts on failure."""
    try:
        data = json.loads(base64.b64decode(payload.strip(), validate=True).decode("utf-8"))
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


def run_payload(runner: CmdletRunner, payload: str) -> AgentRun:
    """Decode the request part of stdin and execute it (a bad request is a ``fatal``)."""
    try:
        request = decode_request(payload)
    except ProtocolError as exc:
        return AgentRun(_response(runner, [], None, fatal=str(exc)), [])
    return execute(runner, request)


def execute(runner: CmdletRunner, request: Request) -> AgentRun:
    """Execute ``request`` as agent.ps1 would against ``runner``."""
    host_lines: list[str] = []
    sessions = _Sessions(runner, request)
    steps = _Steps(request.diagnose)
    try:
        run = _execute(runner, request, sessions, host_lines, steps)
    finally:
        sessions.close(steps)  # Remove-PSSession, in agent.ps1's finally
    # The response is written after that finally: it reports the removal too.
    return AgentRun(replace(run.response, loading=tuple(steps.steps)), run.host_lines)


def _execute(
    runner: CmdletRunner,
    request: Request,
    sessions: _Sessions,
    host_lines: list[str],
    steps: _Steps,
) -> AgentRun:
    results: list[Result] = []
    loaded: set[Provider] = set()
    endpoint = runner.hostname
    mode = request.exchange.mode

    def fatal(text: str, version: str | None = None) -> AgentRun:
        return AgentRun(_response(runner, [], version, fatal=text), host_lines)

    if mode in ("snapin", "remote"):
        if mode == "remote":
            # No uri: the agent's own host's /PowerShell, as agent.ps1 works it out.
            remote_host = (
                urlsplit(request.exchange.uri).hostname or ""
                if request.exchange.uri
                else runner.hostname
            )
            uri = request.exchange.uri or f"http://{remote_host}/PowerShell/"
            failed = sessions.open_exchange(remote_host)
            if not steps.record("exchange-session", failed, uri):
                return fatal(failed or "")
            if failed is None:
                names = _imported(request)
                steps.record("import-session", None, f"{len(names)} commands")
                endpoint = remote_host.split(".")[0]
                loaded.add("exchange")
        elif not runner.has_server(runner.hostname):
            if not steps.record("exchange-session", err.SNAPIN_NOT_FOUND, ""):
                return fatal(err.SNAPIN_NOT_FOUND)
        else:
            # The snap-in's AD driver binds as the caller: a second hop unless it can delegate.
            sessions.main.exchange_reaches_ad = runner.logon.delegates
            steps.record("exchange-session", None, SNAPIN)
            loaded.add("exchange")
    for module in request.modules:
        missing = None
        if not runner.has_module(runner.hostname, module):
            missing = err.MODULE_NOT_FOUND.format(name=module)
        if not steps.record(f"module:{module}", missing, ""):
            return fatal(missing or "")
        if missing is None:
            loaded.add("nlb")
    frozen = frozenset(loaded)
    sessions.modules = tuple(request.modules)

    version: str | None = None
    if "exchange" in loaded:
        try:
            output = runner.invoke(
                "Get-ExchangeServer", {"Identity": endpoint}, frozen, sessions.main
            )
            host_lines += output.host_lines
            server = next(iter(output.objects), {})
            found = server.get("AdminDisplayVersion")
            version = None if found is None else str(found)
        except err.ExchangeError:
            version = None
        match = _VERSION_MAJOR.match(version or "")
        too_new = None
        if match and int(match.group(1)) >= 15:
            too_new = EXCHANGE_TOO_NEW.format(host=endpoint, version=version)
        if not steps.record("exchange-version", too_new, version or ""):
            return fatal(too_new or "", version)
        # Recipient cmdlets see the whole forest, not only this server's domain (field §3).
        scope_failed = None
        try:
            runner.invoke("Set-AdServerSettings", {"ViewEntireForest": True}, frozen,
                          sessions.main)
        except err.ExchangeError as exc:
            scope_failed = exc.message
        if not steps.record("recipient-scope", scope_failed, "ViewEntireForest"):
            return fatal(scope_failed or "", version)

    keepalive = _Keepalive(runner, request.keepalive, frozen, host_lines, sessions)
    for invocation in request.invocations:
        checkpoint()  # a killed process runs nothing more
        if not keepalive.run_if_due():
            break  # nothing more runs: later invocations have no result
        if not keepalive.fence_passes(request.fence, invocation):
            break  # its lock was broken or taken over: no more writes
        result = _run_invocation(
            runner, invocation, frozen, host_lines, keepalive, sessions, request.diagnose
        )
        results.append(result)
        if keepalive.stopped is not None:
            break  # it failed while this invocation polled
        if not result.ok and invocation.on_error != "continue":
            break
    response = _response(runner, results, version, fatal=None)
    response = replace(response, stopped=keepalive.stopped, keepalives=keepalive.runs)
    return AgentRun(response, host_lines)


SNAPIN = "Microsoft.Exchange.Management.PowerShell.E2010"


def _imported(request: Request) -> list[str]:
    """The commands agent.ps1 imports from the /PowerShell session: the version check's, the
    recipient scope's, and those the request uses (a diagnose request: every Exchange command
    of the allow-list)."""
    names = ["Get-ExchangeServer", "Set-AdServerSettings"]
    wanted = ALLOWED_CMDLETS if request.diagnose else [i.cmdlet for i in request.invocations]
    for name in wanted:
        if "-nlb" in name.lower() or "-casdesired" in name.lower() or not is_allowed(name):
            continue
        if name.lower() not in (n.lower() for n in names):
            names.append(name)
    return names


class _Steps:
    """Add-AgentStep: what loading the request's needs did; whether the run goes on."""

    def __init__(self, diagnose: bool) -> None:
        self.diagnose = diagnose
        self.steps: list[LoadStep] = []

    def record(self, step: str, failed: str | None, detail: str) -> bool:
        """Record ``step`` (``failed``: its error, None when it worked). False when the run must
        stop: a step failed and the request is not a diagnose request."""
        self.steps.append(LoadStep(step, failed is None, detail if failed is None else failed))
        return failed is None or self.diagnose


class _Sessions:
    """The sessions one agent run opens, as agent.ps1 does: the Exchange /PowerShell session
    (remote mode) and one PSSession per other computer an invocation names, each opened with
    the request's credential (passed inside the session: no delegation needed) and removed
    when the run ends."""

    def __init__(self, runner: CmdletRunner, request: Request) -> None:
        self.runner = runner
        self.credential = request.credential
        credential_valid = (
            None if request.credential is None
            else runner.credential_valid(request.credential.username, request.credential.password)
        )
        self.main = Session(
            runner.hostname,
            delegates=runner.logon.delegates,
            rbac_filtered=request.exchange.mode == "remote",
            credential_valid=credential_valid,
            user=runner.logon.user,
        )
        self.modules: tuple[str, ...] = ()
        self._nodes: dict[str, Session] = {}
        self._exchange_user: str | None = None

    def _connect(self, host: str) -> str | None:
        """New-PSSession to ``host``: None when it opens, else Windows' error text."""
        if not self.runner.has_server(host.split(".")[0]):
            return REMOTE_CONNECT_FAILED.format(host=host)
        if not self.runner.reachable(host.split(".")[0]):
            return err.REMOTE_UNREACHABLE.format(host=host)
        if self.credential is None:
            if not self.runner.logon.delegates:
                return err.REMOTE_NO_CREDENTIAL.format(host=host)
        elif not self.runner.credential_valid(self.credential.username, self.credential.password):
            return err.REMOTE_ACCESS_DENIED.format(host=host)
        return None

    def open_exchange(self, host: str) -> str | None:
        """The /PowerShell session: None when it opened, else agent.ps1's fatal text."""
        failed = self._connect(host)
        if failed is not None:
            return failed
        user = self.credential.username if self.credential else self.runner.logon.user
        limit_reached = not self.runner.open_exchange_session(user)
        if limit_reached:
            settings = getattr(self.runner, "behaviour", None)
            limit = getattr(settings, "exchange_session_limit", 18)
            return err.EXCHANGE_SESSIONS_EXCEEDED.format(host=host, limit=limit)
        self._exchange_user = user
        return None

    def for_invocation(self, invocation: Invocation) -> Session:
        """Where ``invocation`` runs; raises the PSSession's error when it cannot be opened."""
        computer = invocation.computer
        if not computer or computer.split(".")[0].lower() == self.runner.hostname.lower():
            return self.main
        key = computer.lower()
        if key not in self._nodes:
            failed = self._connect(computer)
            if failed is not None:
                raise err.ExchangeError(failed, target=computer,
                                        category="PSRemotingTransportException")
            # A session opened with explicit credentials is a network logon: no further hop.
            self._nodes[key] = Session(
                computer.split(".")[0], delegates=False, credential_valid=True,
                user=self.main.user,
            )
        return self._nodes[key]

    def node_modules(self, session: Session) -> frozenset[Provider]:
        """What $RemoteCmdlet loads on a node: each of the request's modules, imported there
        (a module the node lacks fails the invocation, as Import-Module does)."""
        loaded: set[Provider] = set()
        for module in self.modules:
            if not self.runner.has_module(session.computer, module):
                raise err.ExchangeError(
                    err.MODULE_NOT_FOUND.format(name=module), target=module,
                    category="FileNotFoundException",
                )
            loaded.add("nlb")
        return frozenset(loaded)

    def close(self, steps: _Steps | None = None) -> None:
        if self._exchange_user is not None:
            self.runner.close_exchange_session(self._exchange_user)
            self._exchange_user = None
            if steps is not None:
                steps.record("exchange-session-removed", None, "")
        self._nodes.clear()


class _Keepalive:
    """Invoke-AgentKeepalive: the request's keepalive, run whenever its interval has passed."""

    def __init__(
        self,
        runner: CmdletRunner,
        keepalive: Keepalive | None,
        loaded: frozenset[Provider],
        host_lines: list[str],
        sessions: _Sessions,
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
    runner: CmdletRunner,
    results: list[Result],
    version: str | None,
    *,
    fatal: str | None,
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
    sessions: _Sessions,
    diagnose: bool = False,
) -> Result:
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
        parameters = {
            k: v for k, v in invocation.parameters.items() if k.lower() != "erroraction"
        }
        if invocation.group_by is not None:
            output = runner.invoke(invocation.cmdlet, parameters, loaded, session)
            host_lines += output.host_lines
            groups = _counted(output.objects, invocation.group_by)
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
                    objects.append(_select(obj, invocation.properties))
                    if _group_key(obj, until.property).lower() not in wanted:
                        pending += 1
                if pending == 0:
                    break
                if runner.monotonic() >= deadline:
                    raise _thrown(UNTIL_TIMEOUT.format(
                        timeout=_ps_number(until.timeout_seconds),
                        property=until.property,
                        values=", ".join(until.values),
                    ))
                runner.sleep(until.interval_seconds)
                checkpoint()
                if keepalive is not None and not keepalive.run_if_due():
                    raise _thrown(keepalive.stopped or "")
            return Result(id=invocation.id, ok=True, objects=tuple(objects))
        output = runner.invoke(invocation.cmdlet, parameters, loaded, session)
        host_lines += output.host_lines
        selected = tuple(_select(obj, invocation.properties) for obj in output.objects)
        return Result(id=invocation.id, ok=True, objects=selected)
    except err.ExchangeError as exc:
        error = InvocationError(message=exc.message, category=exc.category, target=exc.target)
        return Result(id=invocation.id, ok=False, objects=tuple(objects), error=error)


def _thrown(message: str) -> err.ExchangeError:
    """What ``throw "text"`` makes in PowerShell: a RuntimeException whose target is the text."""
    return err.ExchangeError(message, target=message, category="RuntimeException")


def _select(obj: Obj, names: Iterable[str]) -> dict[str, JsonValue]:
    """``$Object.PSObject.Properties[$name]``: case-insensitive; absent properties left out."""
    row: dict[str, JsonValue] = {}
    for name in names:
        found = _property(obj, name)
        if found is not None:
            row[name] = found[1]
    return row


def _property(obj: Obj, name: str) -> tuple[str, JsonValue] | None:
    if name in obj:
        return name, obj[name]
    lowered = name.lower()
    return next(((k, v) for k, v in obj.items() if k.lower() == lowered), None)


def _counted(objects: Iterable[Obj], name: str) -> dict[str, int]:
    """Group-Object -NoElement: how many objects per value of one property."""
    count_by = getattr(objects, "count_by", None)
    fast = count_by(name) if callable(count_by) else None
    if fast is not None:
        return dict(fast)
    groups: dict[str, int] = {}
    for obj in objects:
        key = _group_key(obj, name)
        groups[key] = groups.get(key, 0) + 1
    return groups


def _group_key(obj: Obj, name: str) -> str:
    """Get-GroupKey: the property as text, '' when absent or null."""
    found = _property(obj, name)
    if found is None or found[1] is None:
        return ""
    return _ps_text(found[1])


def _ps_text(value: Any) -> str:
    """``[string]`` of a converted value, as PowerShell renders it."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return _ps_number(value)
    if isinstance(value, list):
        return " ".join(_ps_text(v) for v in value)
    return str(value)


def _ps_number(value: float) -> str:
    """A [double] in a PowerShell string: 300, not 300.0."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))

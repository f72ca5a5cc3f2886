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
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from casdesired.agent.protocol import (
    ALLOWED_CMDLETS,
    FENCED,
    KEEPALIVE_FAILED,
    NOT_A_READ,
    PROTOCOL_VERSION,
    Credential,
    Invocation,
    InvocationError,
    Keepalive,
    LoadStep,
    Request,
    Response,
    Result,
    is_allowed,
    is_fenced,
    is_read,
)
from casdesired.errors import ProtocolError
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.agent_values import as_date, counted, group_key, ps_number, select
from casdesired.lab.exchange.binding import LabValue, Obj, Provider
from casdesired.lab.exchange.runner import CmdletRunner, Sessions
from casdesired.lab.process import checkpoint

SNAPIN = "Microsoft.Exchange.Management.PowerShell.E2010"
_CMDLET_NAME = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+$")
_VERSION_MAJOR = re.compile(r"Version\s+(\d+)\.")

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
EXCHANGE_TOO_NEW = (
    "Exchange Server 2013 or later detected on {host} ({version}): "
    "casdesired manages Exchange 2010 only."
)


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
        data = json.loads(base64.b64decode(text.strip(), validate=True).decode("utf-8"))
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
    steps = _Steps(request.diagnose)
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
    steps: _Steps,
    probes: bool,
) -> AgentRun:
    results: list[Result] = []
    loaded: set[Provider] = {"probes"} if probes else set()
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
                refused = _import_refused(runner.settings.host_execution_policy_gpo)
                shown = refused
                if refused is not None and request.diagnose:
                    # agent.ps1 then imports them one by one: each is refused the same way.
                    shown = f"0 of {len(names)} commands: {refused}"
                if not steps.record("import-session", shown, f"{len(names)} commands"):
                    return fatal(refused or "")
                endpoint = remote_host.split(".")[0]
                if refused is None:
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


def _imported(request: Request) -> list[str]:
    """The commands agent.ps1 imports from the /PowerShell session in one go: the version
    check's, the recipient scope's, and those the request uses (a diagnose request: every
    Exchange command of the allow-list), its optional ones apart."""
    names = ["Get-ExchangeServer", "Set-AdServerSettings"]
    wanted = ALLOWED_CMDLETS if request.diagnose else [i.cmdlet for i in request.invocations]
    for name in wanted:
        lowered = name.lower()
        if "-nlb" in lowered or "-casdesired" in lowered or not is_allowed(name):
            continue
        if name in OPTIONAL_CMDLETS:
            continue
        if lowered not in (n.lower() for n in names):
            names.append(name)
    return names


OPTIONAL_CMDLETS = ("Get-AdminAuditLogConfig", "Search-AdminAuditLog")


def _import_refused(group_policy: str) -> str | None:
    """Import-PSSession's error when the execution policy Group Policy sets refuses the module
    it generates (which beats the agent's -ExecutionPolicy Bypass); None when it loads."""
    if group_policy == "Restricted":
        return err.SCRIPTS_DISABLED.format(path=err.IMPLICIT_MODULE)
    if group_policy == "AllSigned":
        return err.NOT_SIGNED.format(path=err.IMPLICIT_MODULE)
    return None
"""agent.ps1's $OptionalCmdlets: imported apart, so one RBAC does not grant fails alone."""


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


def _thrown(message: str) -> err.ExchangeError:
    """What ``throw "text"`` makes in PowerShell: a RuntimeException whose target is the text."""
    return err.ExchangeError(message, target=message, category="RuntimeException")

"""The agent protocol: what casdesired sends to its PowerShell 2.0 agent, and what comes back.

Both the reconciler (``casdesired.transport``) and the lab (``casdesired.lab``) import this
module, so the two ends cannot drift apart.

How a run travels (see docs/agent.md):

1. The command line is short and fixed: ``powershell.exe ... -EncodedCommand <BOOTSTRAP>``. It
   stays far under cmd.exe's 8,191-character limit whatever the organisation's size.
2. stdin carries the agent script (``agent.ps1``, ASCII, first line :data:`AGENT_MARKER`),
   then :data:`REQUEST_SEPARATOR`, then the request as base64 of UTF-8 JSON. Base64 keeps stdin
   pure ASCII, so no console codepage can damage a non-ASCII name, and values travel as *data*:
   the agent splats them into cmdlets and never splices them into script text.
3. The agent writes one line to stdout: :data:`RESPONSE_BEGIN` + :data:`GZIP_PREFIX` + base64
   of gzip of UTF-8 JSON + :data:`RESPONSE_END`. Anything else on stdout (banners, warnings,
   stray output) is ignored, so it cannot corrupt the result. Gzip because WS-Man caps each
   Receive envelope near 150 KB: JSON of a large organisation shrinks about tenfold, so the
   answer takes a near-constant number of round trips. (A frame without the prefix is plain
   base64 JSON; both decode.)

Invocation semantics (the agent and the lab implement them identically):

* invocations run in order; each is ``& $cmdlet @parameters -ErrorAction Stop``;
* ``properties`` selects what to return of each output object, converted to JSON primitives
  (strings, numbers, booleans, null, lists of those); identities (ADObjectId, Fqdn, ...) as
  their ``ToString()``;
* ``group_by`` returns counts of output objects per value of one property instead of objects
  (used to count mailboxes per database in one call);
* ``until`` repeats the invocation until every output object's property is one of the values,
  or the timeout passes (an error) — used to wait for an NLB drain;
* on an error the result carries Exchange's message; with ``on_error="stop"`` (the default)
  nothing after it runs and later invocations have no result at all;
* only the cmdlets in :data:`ALLOWED_CMDLETS` run: any other name is refused as PowerShell
  refuses an unknown command. agent.ps1 holds the same list literally (a request cannot widen
  it), the lab's executor checks it, and the reconciler refuses to send anything else
  (:func:`check_allowed`);
* a request may carry a ``keepalive`` (:class:`Keepalive`): an invocation the agent runs
  whenever ``interval_seconds`` have passed since it last ran (or since the agent started),
  between invocations and between the polls of an ``until``. If it fails, the agent stops at
  once: nothing more runs, an ``until`` it interrupted fails with :data:`KEEPALIVE_FAILED`, and
  the response's ``stopped`` says why. apply renews the organisation lock's lease this way, so
  a long batch never outlives its lease;
* a request may carry a ``fence``: the lock id its writes run under. Before each command of
  :data:`FENCED_CMDLETS` the agent checks that this lock is still the organisation's lock; if
  it is not (broken with ``casdesired unlock``, taken over), or cannot be told, the agent stops:
  nothing more runs and ``stopped`` is :data:`FENCED`. A write already running finishes.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from casdesired.errors import ProtocolError

PROTOCOL_VERSION = 1
AGENT_MARKER = "# casdesired-agent protocol 1"
"""The first line of agent.ps1; the lab recognises the agent by it."""
REQUEST_SEPARATOR = "#<casdesired-request>"
RESPONSE_BEGIN = "<casdesired-response>"
RESPONSE_END = "</casdesired-response>"
GZIP_PREFIX = "gzip:"
MAX_RESPONSE_BYTES = 1 << 30
"""Refuse a response that inflates past this: nothing casdesired asks for comes near it."""

# The bootstrap sent on the command line. PowerShell 2.0 syntax only. It reads the whole of
# stdin, runs the agent part as a script block and hands it the (base64) request part. The
# argument is parenthesised: an expression in parentheses is the same value to PowerShell, and
# a grammar that follows the language specification (tests/agent parses this text) reads it.
BOOTSTRAP_SCRIPT = (
    "$ErrorActionPreference='Stop';$ProgressPreference='SilentlyContinue';"
    "$s=[Console]::In.ReadToEnd();"
    f"$i=$s.IndexOf('{REQUEST_SEPARATOR}');"
    "if($i -lt 0){[Console]::Error.WriteLine('casdesired: no agent on stdin');exit 3};"
    "& ([scriptblock]::Create($s.Substring(0,$i)))"
    f" ($s.Substring($i+{len(REQUEST_SEPARATOR)}).Trim())"
)
POWERSHELL_EXE = "powershell.exe"
POWERSHELL_ARGS = ("-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass")

Scalar: TypeAlias = str | int | float | bool | None
ParamValue: TypeAlias = Scalar | list[Scalar]
JsonValue = Any

SECRET_KEYS = frozenset({"password", "credential", "secret"})

ALLOWED_CMDLETS: tuple[str, ...] = (
    # Exchange 2010: what the reader reads and what changes write.
    "Get-ExchangeServer",
    "Get-ClientAccessServer",
    "Set-ClientAccessServer",
    "Get-ClientAccessArray",
    "New-ClientAccessArray",
    "Set-ClientAccessArray",
    "Remove-ClientAccessArray",
    "Get-MailboxDatabase",
    "Set-MailboxDatabase",
    "Get-Mailbox",
    # Windows NLB (module NetworkLoadBalancingClusters). Start-NlbClusterNode is not sent by
    # casdesired today; plans tell operators to use it to bring a stopped node back.
    "Get-NlbCluster",
    "Get-NlbClusterNode",
    "Add-NlbClusterNode",
    "Stop-NlbClusterNode",
    "Start-NlbClusterNode",
    "Remove-NlbClusterNode",
    # The agent's own functions: the organisation lock (agent.ps1, "The organisation lock").
    "Enter-CasdesiredLock",
    "Update-CasdesiredLock",
    "Exit-CasdesiredLock",
    "Remove-CasdesiredLock",
    "Get-CasdesiredLock",
    "Register-CasdesiredPlan",
    # The agent's own probes (``casdesired doctor``; agent.ps1, "Probes"): each only reads.
    "Get-CasdesiredHost",
    "Get-CasdesiredWinRMConfig",
    "Get-CasdesiredCommand",
    "Get-CasdesiredStaticPort",
    "Get-CasdesiredLockDirectory",
)
"""Every command the agent runs; anything else is refused. agent.ps1 repeats this list
literally (``$AllowedCmdlets``; tests/agent checks the two are equal) so that no request can
widen it. Names compare case-insensitively, as PowerShell's do."""

_ALLOWED_KEYS = frozenset(name.lower() for name in ALLOWED_CMDLETS)

KEEPALIVE_FAILED = "casdesired: stopped: the keepalive {cmdlet} failed: {message}"
"""The agent's text (``stopped``, and the error of an ``until`` it cut short) when a keepalive
fails: nothing after it was run."""

FENCED_CMDLETS: tuple[str, ...] = (
    "Set-ClientAccessServer",
    "New-ClientAccessArray",
    "Set-ClientAccessArray",
    "Remove-ClientAccessArray",
    "Set-MailboxDatabase",
    "Add-NlbClusterNode",
    "Stop-NlbClusterNode",
    "Start-NlbClusterNode",
    "Remove-NlbClusterNode",
)
"""The commands that write: in a request with a ``fence``, each is preceded by the lock check.
agent.ps1 repeats this list literally (``$FencedCmdlets``; tests/agent checks the two are equal)."""

_FENCED_KEYS = frozenset(name.lower() for name in FENCED_CMDLETS)

READ_CMDLETS: tuple[str, ...] = (
    "Get-ExchangeServer",
    "Get-ClientAccessServer",
    "Get-ClientAccessArray",
    "Get-MailboxDatabase",
    "Get-Mailbox",
    "Get-NlbCluster",
    "Get-NlbClusterNode",
    "Get-CasdesiredLock",
    "Get-CasdesiredHost",
    "Get-CasdesiredWinRMConfig",
    "Get-CasdesiredCommand",
    "Get-CasdesiredStaticPort",
    "Get-CasdesiredLockDirectory",
)
"""The read allow-list: the commands of :data:`ALLOWED_CMDLETS` that change nothing, on any
host. A ``diagnose`` request (``casdesired doctor``) may name only these; agent.ps1 repeats the
list literally (``$ReadCmdlets``; tests/agent checks the two are equal) and refuses anything
else in such a request."""

_READ_KEYS = frozenset(name.lower() for name in READ_CMDLETS)

NOT_A_READ = (
    "casdesired: '{cmdlet}' is not a read command; a diagnose request runs only the commands "
    "of the read allow-list."
)
"""The agent's error for a command of a diagnose request that is not on the read allow-list."""

FENCED = (
    "casdesired: stopped before {cmdlet}, whose lock check failed: {message} "
    "Nothing more was run."
)
"""The agent's ``stopped`` text when the fence stopped a request; ``message`` is the lock
check's error without its ``casdesired: `` prefix."""
FENCED_PREFIX = FENCED.partition("{cmdlet}")[0]


def is_fenced(cmdlet: str) -> bool:
    """Whether ``cmdlet`` writes, so a fenced request checks its lock before it."""
    return cmdlet.lower() in _FENCED_KEYS


def is_read(cmdlet: str) -> bool:
    """Whether ``cmdlet`` is on the read allow-list (:data:`READ_CMDLETS`)."""
    return cmdlet.lower() in _READ_KEYS


def encode_command(script: str) -> str:
    """``-EncodedCommand`` form of a script: base64 of UTF-16LE, as powershell.exe expects."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def decode_command(encoded: str) -> str:
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"not a valid -EncodedCommand: {exc}") from None


def command_line() -> tuple[str, list[str]]:
    """The executable and arguments that start the agent; constant and short."""
    return POWERSHELL_EXE, [*POWERSHELL_ARGS, "-EncodedCommand", encode_command(BOOTSTRAP_SCRIPT)]


@dataclass(frozen=True)
class Until:
    """Repeat an invocation until every object's ``property`` is one of ``values``."""

    property: str
    values: tuple[str, ...]
    timeout_seconds: float = 300.0
    interval_seconds: float = 5.0


@dataclass(frozen=True)
class Invocation:
    id: str
    cmdlet: str
    parameters: Mapping[str, ParamValue] = field(default_factory=dict)
    properties: tuple[str, ...] = ()
    group_by: str | None = None
    until: Until | None = None
    on_error: Literal["stop", "continue"] = "stop"
    computer: str | None = None
    """Run it on this computer (through a PSSession the agent opens there with the request's
    credential), not on the endpoint host: NLB steps run on the node itself, since WMI to
    another host from inside a WinRM session is a second hop (field §1b). None: locally."""

    def to_json(self) -> dict[str, JsonValue]:
        data: dict[str, JsonValue] = {
            "id": self.id,
            "cmdlet": self.cmdlet,
            "parameters": dict(self.parameters),
            "properties": list(self.properties),
            "on_error": self.on_error,
        }
        if self.computer is not None:
            data["computer"] = self.computer
        if self.group_by is not None:
            data["group_by"] = self.group_by
        if self.until is not None:
            data["until"] = {
                "property": self.until.property,
                "values": list(self.until.values),
                "timeout_seconds": self.until.timeout_seconds,
                "interval_seconds": self.until.interval_seconds,
            }
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> Invocation:
        until = data.get("until")
        on_error = data.get("on_error", "stop")
        if on_error not in ("stop", "continue"):
            raise ProtocolError(f"invocation {data.get('id')!r}: bad on_error {on_error!r}")
        params = data.get("parameters") or {}
        if not isinstance(params, dict):
            raise ProtocolError(f"invocation {data.get('id')!r}: parameters must be an object")
        return cls(
            id=str(data["id"]),
            cmdlet=str(data["cmdlet"]),
            parameters=params,
            properties=tuple(data.get("properties") or ()),
            group_by=data.get("group_by"),
            until=(
                Until(
                    property=str(until["property"]),
                    values=tuple(str(v) for v in until["values"]),
                    timeout_seconds=float(until.get("timeout_seconds", 300.0)),
                    interval_seconds=float(until.get("interval_seconds", 5.0)),
                )
                if until
                else None
            ),
            on_error=on_error,
            computer=str(data["computer"]) if data.get("computer") else None,
        )


@dataclass(frozen=True)
class Keepalive:
    """An invocation the agent repeats while a request runs (e.g. renew the lock's lease)."""

    invocation: Invocation
    interval_seconds: float
    """Run it whenever this long has passed since its last run (or the agent's start)."""

    def to_json(self) -> dict[str, JsonValue]:
        return {"invocation": self.invocation.to_json(), "interval_seconds": self.interval_seconds}

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> Keepalive:
        invocation = data.get("invocation")
        if not isinstance(invocation, dict):
            raise ProtocolError("keepalive: invocation must be an object")
        interval = float(data.get("interval_seconds", 0))
        if not interval > 0:
            raise ProtocolError(f"keepalive: bad interval_seconds {interval!r}")
        return cls(invocation=Invocation.from_json(invocation), interval_seconds=interval)


@dataclass(frozen=True)
class ExchangeSession:
    """How the agent reaches the Exchange cmdlets."""

    mode: Literal["snapin", "remote", "none"] = "remote"
    """``snapin``: Add-PSSnapin (simple, unsupported by Microsoft: bypasses RBAC, and inside a
    WinRM session it needs a logon that can delegate — CredSSP).
    ``remote``: New-PSSession to the supported ``/PowerShell`` endpoint, with the request's
    credential (no delegation needed).
    ``none``: no Exchange cmdlets (NLB-only or lock-only runs)."""
    uri: str | None = None
    """The ``/PowerShell`` URI; None: the agent's own host's (``http://<its FQDN>/PowerShell/``:
    the WinRM endpoint is an Exchange 2010 server)."""
    authentication: str = "Kerberos"

    def to_json(self) -> dict[str, JsonValue]:
        data: dict[str, JsonValue] = {"mode": self.mode, "authentication": self.authentication}
        if self.uri:
            data["uri"] = self.uri
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> ExchangeSession:
        mode = data.get("mode", "remote")
        if mode not in ("snapin", "remote", "none"):
            raise ProtocolError(f"unknown exchange session mode {mode!r}")
        return cls(
            mode=mode,
            uri=data.get("uri"),
            authentication=str(data.get("authentication", "Kerberos")),
        )


@dataclass(frozen=True)
class Credential:
    """Explicit credentials the agent uses for every second hop: the Exchange ``/PowerShell``
    session and the PSSessions to NLB nodes. Passing credentials inside the session is what
    works without delegation (field §1c)."""

    username: str
    password: str = field(repr=False)

    def to_json(self) -> dict[str, JsonValue]:
        return {"username": self.username, "password": self.password}

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> Credential:
        return cls(str(data.get("username") or ""), str(data.get("password") or ""))


@dataclass(frozen=True)
class Request:
    invocations: tuple[Invocation, ...]
    exchange: ExchangeSession = field(default_factory=ExchangeSession)
    modules: tuple[str, ...] = ()
    """PowerShell modules to Import-Module first (2.0 does not auto-load them)."""
    protocol: int = PROTOCOL_VERSION
    keepalive: Keepalive | None = None
    """Repeated while the request runs; its failure stops the run (see the module docstring)."""
    fence: str | None = None
    """The lock id the request's writes run under: checked before each (module docstring)."""
    credential: Credential | None = None
    """For second hops (:class:`Credential`); None: the logon's own (works only if it can
    delegate)."""
    diagnose: bool = False
    """``casdesired doctor``'s request: what loading Exchange and the modules does is reported
    step by step in the response's ``loading`` instead of stopping the run (a failed step is
    not ``fatal``: the invocations run, and those that needed it fail on their own), and only
    commands of the read allow-list (:data:`READ_CMDLETS`) run."""

    def to_json(self) -> dict[str, JsonValue]:
        data: dict[str, JsonValue] = {
            "protocol": self.protocol,
            "exchange": self.exchange.to_json(),
            "modules": list(self.modules),
            "invocations": [i.to_json() for i in self.invocations],
        }
        if self.credential is not None:
            data["credential"] = self.credential.to_json()
        if self.keepalive is not None:
            data["keepalive"] = self.keepalive.to_json()
        if self.fence is not None:
            data["fence"] = self.fence
        if self.diagnose:
            data["diagnose"] = True
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> Request:
        if data.get("protocol") != PROTOCOL_VERSION:
            raise ProtocolError(f"unsupported agent protocol {data.get('protocol')!r}")
        keepalive = data.get("keepalive")
        return cls(
            invocations=tuple(Invocation.from_json(i) for i in data.get("invocations") or ()),
            exchange=ExchangeSession.from_json(data.get("exchange") or {}),
            modules=tuple(data.get("modules") or ()),
            keepalive=Keepalive.from_json(keepalive) if keepalive else None,
            fence=str(data["fence"]) if data.get("fence") else None,
            credential=(
                Credential.from_json(data["credential"])
                if isinstance(data.get("credential"), Mapping)
                else None
            ),
            diagnose=data.get("diagnose") is True,
        )

    def cmdlets(self) -> tuple[str, ...]:
        """Every command name the request would run, its keepalive's included."""
        names = [i.cmdlet for i in self.invocations]
        if self.keepalive is not None:
            names.append(self.keepalive.invocation.cmdlet)
        return tuple(names)


def is_allowed(cmdlet: str) -> bool:
    """Whether the agent runs ``cmdlet`` (case-insensitive, as PowerShell compares names)."""
    return cmdlet.lower() in _ALLOWED_KEYS


def check_allowed(request: Request) -> None:
    """Refuse, before anything is sent, a request naming a command the agent would refuse:
    one off the allow-list, or, in a ``diagnose`` request, one off the read allow-list."""
    refused = sorted({name for name in request.cmdlets() if not is_allowed(name)})
    if refused:
        names = ", ".join(repr(n) for n in refused)
        raise ProtocolError(
            f"casdesired will not send {names} to the agent: the agent runs only the commands "
            "in casdesired.agent.protocol.ALLOWED_CMDLETS"
        )
    writes = sorted({name for name in request.cmdlets() if not is_read(name)})
    if request.diagnose and writes:
        names = ", ".join(repr(n) for n in writes)
        raise ProtocolError(
            f"casdesired will not send {names} in a diagnose request: it runs only the "
            "commands in casdesired.agent.protocol.READ_CMDLETS"
        )


@dataclass(frozen=True)
class InvocationError:
    message: str
    category: str = ""
    """PowerShell's CategoryInfo reason, e.g. ``ManagementObjectNotFoundException``."""
    target: str = ""


@dataclass(frozen=True)
class Result:
    id: str
    ok: bool
    objects: tuple[Mapping[str, JsonValue], ...] = ()
    groups: Mapping[str, int] | None = None
    error: InvocationError | None = None

    def to_json(self) -> dict[str, JsonValue]:
        data: dict[str, JsonValue] = {"id": self.id, "ok": self.ok, "objects": list(self.objects)}
        if self.groups is not None:
            data["groups"] = dict(self.groups)
        if self.error is not None:
            data["error"] = {
                "message": self.error.message,
                "category": self.error.category,
                "target": self.error.target,
            }
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> Result:
        err = data.get("error")
        objects = data.get("objects") or []
        groups = data.get("groups")
        if not isinstance(objects, list) or (groups is not None and not isinstance(groups, dict)):
            raise ProtocolError(f"result {data.get('id')!r} is malformed")
        return cls(
            id=str(data["id"]),
            ok=bool(data["ok"]),
            objects=tuple(objects),
            groups={str(k): int(v) for k, v in groups.items()} if groups is not None else None,
            error=(
                InvocationError(
                    message=str(err.get("message", "")),
                    category=str(err.get("category", "")),
                    target=str(err.get("target", "")),
                )
                if err
                else None
            ),
        )


@dataclass(frozen=True)
class LoadStep:
    """One step of loading what a request needs, as the agent reports it: the Exchange session
    (``exchange-session``), the import of its commands (``import-session``), the endpoint's
    version (``exchange-version``), the recipient scope (``recipient-scope``), a module
    (``module:NAME``), and the session's removal at the end (``exchange-session-removed``)."""

    step: str
    ok: bool
    detail: str = ""
    """What was loaded (a URI, a snap-in), or the error's text when it failed."""

    def to_json(self) -> dict[str, JsonValue]:
        return {"step": self.step, "ok": self.ok, "detail": self.detail}

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> LoadStep:
        return cls(str(data.get("step") or ""), data.get("ok") is True,
                   str(data.get("detail") or ""))


@dataclass(frozen=True)
class Response:
    results: tuple[Result, ...]
    host: str = ""
    ps_version: str = ""
    exchange_version: str | None = None
    """AdminDisplayVersion of the Exchange server the agent talked to."""
    fatal: str | None = None
    """Set when the agent could not run at all (no snap-in, Exchange 2013+, bad request)."""
    agent_protocol: int = PROTOCOL_VERSION
    stopped: str | None = None
    """Set when the request's keepalive failed (the text is :data:`KEEPALIVE_FAILED`) or its
    fence stopped it (:data:`FENCED`): the agent ran nothing after that."""
    keepalives: int = 0
    """How many times the keepalive ran (successfully or not)."""
    loading: tuple[LoadStep, ...] = ()
    """What loading the request's needs did, step by step (:class:`LoadStep`); in a
    ``diagnose`` request a failed step is reported here instead of as ``fatal``."""

    def result(self, invocation_id: str) -> Result | None:
        return next((r for r in self.results if r.id == invocation_id), None)

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "protocol": self.agent_protocol,
            "host": self.host,
            "ps_version": self.ps_version,
            "exchange_version": self.exchange_version,
            "fatal": self.fatal,
            "stopped": self.stopped,
            "keepalives": self.keepalives,
            "loading": [step.to_json() for step in self.loading],
            "results": [r.to_json() for r in self.results],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> Response:
        if data.get("protocol") != PROTOCOL_VERSION:
            raise ProtocolError(f"the agent speaks protocol {data.get('protocol')!r}")
        return cls(
            results=tuple(Result.from_json(r) for r in data.get("results") or ()),
            host=str(data.get("host") or ""),
            ps_version=str(data.get("ps_version") or ""),
            exchange_version=data.get("exchange_version"),
            fatal=data.get("fatal"),
            stopped=data.get("stopped"),
            keepalives=int(data.get("keepalives") or 0),
            loading=tuple(
                LoadStep.from_json(step)
                for step in data.get("loading") or ()
                if isinstance(step, Mapping)
            ),
        )


def _b64json(value: JsonValue) -> str:
    raw = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def _unb64json(text: str, what: str) -> Any:
    try:
        return json.loads(base64.b64decode(text.strip(), validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"the {what} is corrupt: {exc}") from None


def encode_stdin(agent_script: str, request: Request) -> bytes:
    """What is sent on stdin: agent script, separator, base64 request. Pure ASCII."""
    if not agent_script.startswith(AGENT_MARKER):
        raise ValueError("agent script must start with the protocol marker")
    text = f"{agent_script.rstrip()}\r\n{REQUEST_SEPARATOR}\r\n{_b64json(request.to_json())}\r\n"
    return text.encode("ascii")


def decode_stdin(data: bytes) -> tuple[str, Request]:
    """The lab's side of :func:`encode_stdin`: (agent script, request)."""
    text = data.decode("ascii", errors="replace")
    index = text.find(REQUEST_SEPARATOR)
    if index < 0:
        raise ProtocolError("no request separator on stdin")
    script, payload = text[:index], text[index + len(REQUEST_SEPARATOR) :]
    if not script.lstrip("\ufeff").startswith(AGENT_MARKER):
        raise ProtocolError("stdin does not start with the casdesired agent")
    return script, Request.from_json(_unb64json(payload, "request"))


def encode_response(response: Response) -> str:
    """One stdout line, as the agent writes it (gzip, then base64)."""
    raw = json.dumps(response.to_json(), ensure_ascii=False, separators=(",", ":"))
    packed = base64.b64encode(_gzip(raw.encode("utf-8"))).decode("ascii")
    return f"{RESPONSE_BEGIN}{GZIP_PREFIX}{packed}{RESPONSE_END}"


def _gzip(data: bytes) -> bytes:
    # mtime fixed at 0 so the same response always encodes to the same bytes.
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def _gunzip_json(text: str, what: str) -> Any:
    try:
        packed = base64.b64decode(text.strip(), validate=True)
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        raw = inflater.decompress(packed, MAX_RESPONSE_BYTES)
        if inflater.unconsumed_tail or not inflater.eof:
            raise ValueError("truncated, or larger than casdesired accepts")
        return json.loads(raw.decode("utf-8"))
    except (binascii.Error, zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"the {what} is corrupt: {exc}") from None


def decode_response(stdout: str) -> Response:
    """Find the framed response in whatever the far side printed."""
    begin = stdout.rfind(RESPONSE_BEGIN)
    if begin < 0:
        raise ProtocolError("the agent printed no response")
    end = stdout.find(RESPONSE_END, begin)
    if end < 0:
        raise ProtocolError("the agent's response was cut off")
    payload = stdout[begin + len(RESPONSE_BEGIN) : end]
    if payload.startswith(GZIP_PREFIX):
        data = _gunzip_json(payload[len(GZIP_PREFIX) :], "agent's response")
    else:
        data = _unb64json(payload, "agent's response")
    if not isinstance(data, dict):
        raise ProtocolError("the agent's response is not an object")
    try:
        return Response.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"the agent's response is malformed: {exc}") from None


def redact(value: JsonValue) -> JsonValue:
    """A copy of a request-shaped value with every secret replaced, for journals and logs."""
    if isinstance(value, Mapping):
        return {
            k: ("***" if str(k).lower() in SECRET_KEYS else redact(v)) for k, v in value.items()
        }
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [redact(v) for v in value]
    return value

"""The agent protocol: what casdesired sends to its PowerShell 2.0 agent, and what comes back.

Both the reconciler (``casdesired.transport``) and the lab (``casdesired.lab``) import this
module, so the two ends cannot drift apart.

How the agent and its request reach the host, and how requests and responses are framed
as text, is :mod:`casdesired.agent.delivery` and :mod:`casdesired.agent.framing` (see
docs/agent.md).

Invocation semantics (the agent and the lab implement them identically):

* invocations run in order; each is ``& $cmdlet @parameters -ErrorAction Stop``;
* ``properties`` selects what to return of each output object, converted to JSON primitives
  (strings, numbers, booleans, null, lists of those); identities (ADObjectId, Fqdn, ...) as
  their ``ToString()``;
* ``expand`` names properties whose elements are objects to return as objects of the named
  sub-properties instead of their ``ToString()`` (an audit entry's ``CmdletParameters``: the
  names AND the values the cmdlet was given);
* ``dates`` names parameters whose values are UTC instants written ``yyyy-MM-ddTHH:mm:ssZ``:
  the agent parses each with the invariant culture into a ``[DateTime]`` (UTC) before the call,
  so no server's regional format ever reads a date as text (and over a remote session a
  ``[DateTime]`` travels as one). Any other text there fails the invocation;
* ``group_by`` returns counts of output objects per value of one property instead of objects
  (used to count mailboxes per database in one call);
* ``until`` repeats the invocation until every output object's property is one of the values,
  or the timeout passes (an error) — used to wait for an NLB drain;
* on an error the result carries Exchange's message; with ``on_error="stop"`` (the default)
  nothing after it runs and later invocations have no result at all;
* ``for_each`` runs an invocation once per object of an earlier one, on the computer each
  names, each run with its own result id (:mod:`casdesired.agent.fanout`);
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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal, TypeAlias

from casdesired.agent import fanout
from casdesired.agent.allowlist import ALLOWED_CMDLETS as ALLOWED_CMDLETS
from casdesired.agent.allowlist import FENCED as FENCED
from casdesired.agent.allowlist import FENCED_CMDLETS as FENCED_CMDLETS
from casdesired.agent.allowlist import FENCED_PREFIX as FENCED_PREFIX
from casdesired.agent.allowlist import KEEPALIVE_FAILED as KEEPALIVE_FAILED
from casdesired.agent.allowlist import NOT_A_READ as NOT_A_READ
from casdesired.agent.allowlist import READ_CMDLETS as READ_CMDLETS
from casdesired.agent.allowlist import check_allowed as check_allowed
from casdesired.agent.allowlist import is_allowed as is_allowed
from casdesired.agent.allowlist import is_fenced as is_fenced
from casdesired.agent.allowlist import is_read as is_read
from casdesired.agent.fanout import ForEach as ForEach
from casdesired.agent.response import PROTOCOL_VERSION as PROTOCOL_VERSION
from casdesired.agent.response import InvocationError as InvocationError
from casdesired.agent.response import JsonValue as JsonValue
from casdesired.agent.response import LoadStep as LoadStep
from casdesired.agent.response import Response as Response
from casdesired.agent.response import Result as Result
from casdesired.errors import ProtocolError

AGENT_MARKER = "# casdesired-agent protocol 1"
"""The first line of agent.ps1; the lab recognises the agent by it."""
Scalar: TypeAlias = str | int | float | bool | None
ParamValue: TypeAlias = Scalar | list[Scalar]

SECRET_KEYS = frozenset({"password", "credential", "secret"})

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
    dates: tuple[str, ...] = ()
    """Parameters whose values are UTC instants (``yyyy-MM-ddTHH:mm:ssZ``, :func:`utc_text`),
    passed to the cmdlet as ``[DateTime]`` values (the module docstring)."""
    expand: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Property -> sub-properties: each element of that property is returned as an object of
    those sub-properties (the module docstring)."""
    for_each: ForEach | None = None
    """Once per object of an earlier invocation (:mod:`casdesired.agent.fanout`); None: once."""

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
        if self.dates:
            data["dates"] = list(self.dates)
        if self.expand:
            data["expand"] = {name: list(subs) for name, subs in self.expand.items()}
        if self.group_by is not None:
            data["group_by"] = self.group_by
        if self.until is not None:
            data["until"] = {
                "property": self.until.property,
                "values": list(self.until.values),
                "timeout_seconds": self.until.timeout_seconds,
                "interval_seconds": self.until.interval_seconds,
            }
        if self.for_each is not None:  # absent otherwise: saved plans' invocations unchanged
            data["for_each"] = self.for_each.to_json()
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
        expand = data.get("expand") or {}
        if not isinstance(expand, dict):
            raise ProtocolError(f"invocation {data.get('id')!r}: expand must be an object")
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
            dates=tuple(str(name) for name in data.get("dates") or ()),
            expand={str(k): tuple(str(s) for s in v) for k, v in expand.items()},
            for_each=ForEach.from_json(data["for_each"]) if "for_each" in data else None,
        )


def utc_text(moment: datetime) -> str:
    """A UTC instant as an invocation's ``dates`` carry it: ``2024-05-01T08:00:00Z``."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime is not a UTC instant")
    return moment.astimezone(timezone.utc).strftime(DATE_FORMAT)


DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
"""The one text form of a date parameter (agent.ps1: ``yyyy-MM-ddTHH:mm:ssZ``)."""


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
    progress: bool = False
    """Write progress lines while it runs (:func:`casdesired.agent.framing.progress_line`):
    apply's batches ask for them; without, stdout holds the response alone, so a quick read
    takes no more Receives than before (each line ends the Receive waiting for it)."""

    def __post_init__(self) -> None:
        fanout.check(self.invocations, self.keepalive.invocation if self.keepalive else None)

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
        if self.progress:
            data["progress"] = True
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
            progress=data.get("progress") is True,
        )

    def cmdlets(self) -> tuple[str, ...]:
        """Every command name the request would run, its keepalive's included."""
        names = [i.cmdlet for i in self.invocations]
        if self.keepalive is not None:
            names.append(self.keepalive.invocation.cmdlet)
        return tuple(names)


def redact(value: JsonValue) -> JsonValue:
    """A copy of a request-shaped value with every secret replaced, for journals and logs."""
    if isinstance(value, Mapping):
        return {
            k: ("***" if str(k).lower() in SECRET_KEYS else redact(v)) for k, v in value.items()
        }
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [redact(v) for v in value]
    return value

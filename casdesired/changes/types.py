"""Typed changes: one class per thing casdesired can do to an Exchange 2010 organisation.

Each change knows its identity, the site it belongs to, its before and after values, a one-line
description for people, and the agent invocations that carry it out (``invocations()``). Values
always travel as invocation *parameters* — data the agent splats — never as script text, so a
database called ``x"; Remove-Item C:\\ -Recurse; "`` is just a name.

Cmdlets and parameters follow /work/shared/domain/exchange2010.md exactly; arrays are addressed
by FQDN as ``-Identity``, never by Name (a Name with spaces is not a valid identity).

Changes serialise to JSON (``to_json``) and back (``change_from_json``) so a saved plan can be
applied exactly as reviewed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from enum import Enum
from typing import Any, ClassVar

from casdesired.agent.protocol import Invocation, JsonValue, ParamValue, Until
from casdesired.errors import CasdesiredError

OUTLOOK_PROFILE_WARNING = (
    "existing Outlook 2007/2010 profiles keep the old RPC endpoint until they are repaired or "
    "recreated (or the old endpoint is taken offline)"
)
"""The seed's first post: what every RpcClientAccessServer change does to existing users."""

NLB_MODULE = "NetworkLoadBalancingClusters"
"""PowerShell 2.0 does not auto-load modules: requests with NLB invocations must import this."""

DEFAULT_DRAIN_TIMEOUT_MINUTES = 10
"""How long ``Stop-NlbClusterNode -Drain`` lets existing connections finish (its -Timeout).
[OPEN] the unit (minutes in one help version, seconds in another): casdesired's own wait for
``Stopped`` has its own deadline either way."""

CONVERGED_STATES = ("Converged", "Converged(default)")
"""What ``Get-NlbClusterNode`` prints for a node in service (field §6)."""
CONVERGENCE_TIMEOUT_SECONDS = 90.0
"""How long to wait for a cluster to reconverge after a node joined or left (~10 s usual)."""
CONVERGENCE_POLL_SECONDS = 1.0


def converged_wait(change_id: str, computer: str) -> Invocation:
    """Wait, on ``computer`` (a node of the cluster), until every node is Converged again."""
    return Invocation(
        id=change_id,
        cmdlet="Get-NlbClusterNode",
        properties=("Name", "State"),
        until=Until(
            property="State",
            values=CONVERGED_STATES,
            timeout_seconds=CONVERGENCE_TIMEOUT_SECONDS,
            interval_seconds=CONVERGENCE_POLL_SECONDS,
        ),
        computer=computer,
    )


class Action(str, Enum):
    """What a change does to its object; also its symbol in text output."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "delete": "-"}[self.value]


class BadChange(CasdesiredError):
    """A serialised change is malformed (a damaged or hand-edited plan file)."""


@dataclass(frozen=True)
class Change:
    """Base class: what every change has. Subclasses set ``kind``, ``action`` and ``order``."""

    kind: ClassVar[str] = ""
    action: ClassVar[Action] = Action.UPDATE
    order: ClassVar[int] = 0
    """Position of this change's group in a plan (see casdesired.changes.diff.order_changes)."""
    needs_exchange: ClassVar[bool] = True
    """Whether the agent must load the Exchange cmdlets to run it."""

    site: str

    @property
    def identity(self) -> str:
        raise NotImplementedError

    def before(self) -> dict[str, JsonValue] | None:
        """The live values this change replaces (None for a create)."""
        raise NotImplementedError

    def after(self) -> dict[str, JsonValue] | None:
        """The values it leaves behind (None for a delete)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for people, e.g. ``create CAS array outlook-branch.contoso.local``."""
        raise NotImplementedError

    def invocations(self) -> list[Invocation]:
        """What the agent runs, in order."""
        raise NotImplementedError

    @property
    def mailboxes(self) -> int:
        """Mailboxes whose users this change affects directly (0 when none or unknown)."""
        return 0

    @property
    def subjects(self) -> frozenset[str]:
        """Keys of the objects this change acts on: an object-scoped finding about any of
        them withholds it."""
        return frozenset({self.identity.strip().rstrip(".").lower()})

    @property
    def modules(self) -> tuple[str, ...]:
        """PowerShell modules the agent must import first."""
        return ()

    def _id(self, step: str = "") -> str:
        base = f"{self.kind}:{self.identity}"
        return f"{base}:{step}" if step else base

    def to_json(self) -> dict[str, JsonValue]:
        data: dict[str, JsonValue] = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            data[f.name] = list(value) if isinstance(value, tuple) else value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Change:
        """The inverse of :meth:`to_json`; a malformed entry raises :class:`BadChange`."""
        kind = cls.kind
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                if f.default is not MISSING:
                    continue
                raise BadChange(f"change {kind} lacks {f.name!r}")
            value = data[f.name]
            if "tuple[str, ...]" in str(f.type) and value is not None:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise BadChange(f"change {kind}: {f.name!r} must be a list of strings")
                value = tuple(value)
            values[f.name] = value
        try:
            change = cls(**values)
        except TypeError as exc:
            raise BadChange(f"change {kind} is malformed: {exc}") from None
        _check_types(change)
        return change


@dataclass(frozen=True)
class ArrayCreate(Change):
    """``New-ClientAccessArray``: the site gets its CAS array."""

    kind: ClassVar[str] = "array_create"
    action: ClassVar[Action] = Action.CREATE
    order: ClassVar[int] = 0

    fqdn: str
    name: str

    @property
    def identity(self) -> str:
        return self.fqdn

    def before(self) -> dict[str, JsonValue] | None:
        return None

    def after(self) -> dict[str, JsonValue] | None:
        return {"fqdn": self.fqdn, "name": self.name, "site": self.site}

    def describe(self) -> str:
        return f"create CAS array {self.fqdn} (name {self.name}) in site {self.site}"

    def invocations(self) -> list[Invocation]:
        return [
            Invocation(
                id=self._id(),
                cmdlet="New-ClientAccessArray",
                parameters={"Name": self.name, "Fqdn": self.fqdn, "Site": self.site},
                properties=("Name", "Fqdn", "Site"),
            )
        ]


@dataclass(frozen=True)
class ArrayUpdate(Change):
    """``Set-ClientAccessArray``: a new FQDN and/or Name for the site's existing array.

    A new FQDN is an update, never a delete-and-recreate: the array object (and what databases
    point to) stays; only Outlook profiles need attention (see ``bound_mailboxes``).
    """

    kind: ClassVar[str] = "array_update"
    action: ClassVar[Action] = Action.UPDATE
    order: ClassVar[int] = 3

    live_fqdn: str
    before_name: str
    fqdn: str
    name: str
    bound_databases: tuple[str, ...] = ()
    """Databases whose RpcClientAccessServer names this array now."""
    bound_mailboxes: int = 0

    @property
    def identity(self) -> str:
        return self.live_fqdn

    @property
    def fqdn_changes(self) -> bool:
        return self.fqdn.lower() != self.live_fqdn.lower()

    @property
    def mailboxes(self) -> int:
        return self.bound_mailboxes if self.fqdn_changes else 0

    def before(self) -> dict[str, JsonValue] | None:
        return {"fqdn": self.live_fqdn, "name": self.before_name}

    def after(self) -> dict[str, JsonValue] | None:
        return {"fqdn": self.fqdn, "name": self.name}

    def describe(self) -> str:
        parts = []
        if self.fqdn_changes:
            parts.append(f"FQDN {self.live_fqdn} -> {self.fqdn}")
        if self.name != self.before_name:
            parts.append(f"name {self.before_name} -> {self.name}")
        return f"update CAS array {self.live_fqdn}: " + ", ".join(parts or ["no-op"])

    def invocations(self) -> list[Invocation]:
        params: dict[str, ParamValue] = {"Identity": self.live_fqdn}
        if self.fqdn_changes:
            params["Fqdn"] = self.fqdn
        if self.name != self.before_name:
            params["Name"] = self.name
        return [Invocation(id=self._id(), cmdlet="Set-ClientAccessArray", parameters=params)]


@dataclass(frozen=True)
class ArrayDelete(Change):
    """``Remove-ClientAccessArray -Confirm:$false`` (Remove prompts otherwise)."""

    kind: ClassVar[str] = "array_delete"
    action: ClassVar[Action] = Action.DELETE
    order: ClassVar[int] = 6

    fqdn: str
    name: str

    @property
    def identity(self) -> str:
        return self.fqdn

    def before(self) -> dict[str, JsonValue] | None:
        return {"fqdn": self.fqdn, "name": self.name, "site": self.site}

    def after(self) -> dict[str, JsonValue] | None:
        return None

    def describe(self) -> str:
        return f"delete CAS array {self.fqdn} (name {self.name}) in site {self.site}"

    def invocations(self) -> list[Invocation]:
        return [
            Invocation(
                id=self._id(),
                cmdlet="Remove-ClientAccessArray",
                parameters={"Identity": self.fqdn, "Confirm": False},
            )
        ]


@dataclass(frozen=True)
class BindingChange(Change):
    """``Set-MailboxDatabase -RpcClientAccessServer``: where a database's MAPI clients connect."""

    kind: ClassVar[str] = "binding"
    action: ClassVar[Action] = Action.UPDATE
    order: ClassVar[int] = 4

    database: str
    before_target: str
    target: str
    mailbox_count: int = 0

    @property
    def identity(self) -> str:
        return self.database

    @property
    def mailboxes(self) -> int:
        return self.mailbox_count

    def before(self) -> dict[str, JsonValue] | None:
        return {"rpc_client_access_server": self.before_target}

    def after(self) -> dict[str, JsonValue] | None:
        return {"rpc_client_access_server": self.target}

    def describe(self) -> str:
        return (
            f"rebind database {self.database}: {self.before_target or '(none)'} -> "
            f"{self.target} ({self.mailbox_count:,} mailboxes)"
        )

    def invocations(self) -> list[Invocation]:
        return [
            Invocation(
                id=self._id(),
                cmdlet="Set-MailboxDatabase",
                parameters={"Identity": self.database, "RpcClientAccessServer": self.target},
            )
        ]


@dataclass(frozen=True)
class NlbNodeAdd(Change):
    """``Add-NlbClusterNode``: a CAS joins its array's Windows NLB cluster."""

    kind: ClassVar[str] = "nlb_node_add"
    action: ClassVar[Action] = Action.CREATE
    order: ClassVar[int] = 1
    needs_exchange: ClassVar[bool] = False

    cluster_host: str
    interface: str
    server: str
    server_fqdn: str
    node_interface: str

    @property
    def identity(self) -> str:
        return f"{self.cluster_host}/{self.server}"

    @property
    def modules(self) -> tuple[str, ...]:
        return (NLB_MODULE,)

    @property
    def subjects(self) -> frozenset[str]:
        return frozenset(
            name.strip().rstrip(".").lower()
            for name in (self.identity, self.server, self.server_fqdn)
        )

    def before(self) -> dict[str, JsonValue] | None:
        return None

    def after(self) -> dict[str, JsonValue] | None:
        return {"cluster_host": self.cluster_host, "node": self.server}

    def describe(self) -> str:
        return f"add {self.server} to the NLB cluster on {self.cluster_host}"

    def invocations(self) -> list[Invocation]:
        # On the cluster host itself, not through -HostName: WMI to another host from inside
        # a WinRM session is a second hop (field §1b). Then the cluster reconverges.
        return [
            Invocation(
                id=self._id(),
                cmdlet="Add-NlbClusterNode",
                parameters={
                    "InterfaceName": self.interface,
                    "NewNodeName": self.server_fqdn,
                    "NewNodeInterface": self.node_interface,
                },
                properties=("Name", "State"),
                computer=self.cluster_host,
            ),
            converged_wait(self._id("converged"), self.cluster_host),
        ]


@dataclass(frozen=True)
class NlbNodeRemove(Change):
    """Drain, wait until stopped, then remove a node from its NLB cluster.

    Draining first lets existing RPC connections finish; removing a converged node would cut
    its users off mid-session.
    """

    kind: ClassVar[str] = "nlb_node_remove"
    action: ClassVar[Action] = Action.DELETE
    order: ClassVar[int] = 5
    needs_exchange: ClassVar[bool] = False

    cluster_host: str
    server: str
    server_fqdn: str
    drain_timeout_minutes: int = DEFAULT_DRAIN_TIMEOUT_MINUTES

    @property
    def identity(self) -> str:
        return f"{self.cluster_host}/{self.server}"

    @property
    def modules(self) -> tuple[str, ...]:
        return (NLB_MODULE,)

    @property
    def subjects(self) -> frozenset[str]:
        return frozenset(
            name.strip().rstrip(".").lower()
            for name in (self.identity, self.server, self.server_fqdn)
        )

    def before(self) -> dict[str, JsonValue] | None:
        return {"cluster_host": self.cluster_host, "node": self.server}

    def after(self) -> dict[str, JsonValue] | None:
        return None

    def describe(self) -> str:
        return (
            f"drain and remove {self.server} from the NLB cluster on {self.cluster_host} "
            f"(drain timeout {self.drain_timeout_minutes} min)"
        )

    def invocations(self) -> list[Invocation]:
        # Each step on the node itself (WMI to another host is a second hop, field §1b):
        # drain, wait until stopped (a little longer than the drain itself before calling it a
        # failure), remove; then the cluster host waits for the others to reconverge.
        wait_seconds = float(self.drain_timeout_minutes * 60 + 60)
        return [
            Invocation(
                id=self._id("drain"),
                cmdlet="Stop-NlbClusterNode",
                parameters={"Drain": True, "Timeout": self.drain_timeout_minutes},
                computer=self.server_fqdn,
            ),
            Invocation(
                id=self._id("wait"),
                cmdlet="Get-NlbClusterNode",
                parameters={"NodeName": self.server},
                properties=("Name", "State"),
                until=Until(property="State", values=("Stopped",), timeout_seconds=wait_seconds),
                computer=self.server_fqdn,
            ),
            Invocation(
                id=self._id("remove"),
                cmdlet="Remove-NlbClusterNode",
                parameters={"Force": True},
                computer=self.server_fqdn,
            ),
            converged_wait(self._id("converged"), self.cluster_host),
        ]


@dataclass(frozen=True)
class AutodiscoverChange(Change):
    """``Set-ClientAccessServer``: the SCP domain-joined Outlook uses to find a CAS.

    Only the settings that differ are sent; ``None`` on the after side means "not changed".
    """

    kind: ClassVar[str] = "autodiscover"
    action: ClassVar[Action] = Action.UPDATE
    order: ClassVar[int] = 2

    server: str
    before_internal_uri: str | None = None
    internal_uri: str | None = None
    before_site_scope: tuple[str, ...] | None = None
    site_scope: tuple[str, ...] | None = None

    @property
    def identity(self) -> str:
        return self.server

    def before(self) -> dict[str, JsonValue] | None:
        data: dict[str, JsonValue] = {}
        if self.internal_uri is not None:
            data["internal_uri"] = self.before_internal_uri
        if self.site_scope is not None:
            data["site_scope"] = list(self.before_site_scope or ())
        return data

    def after(self) -> dict[str, JsonValue] | None:
        data: dict[str, JsonValue] = {}
        if self.internal_uri is not None:
            data["internal_uri"] = self.internal_uri
        if self.site_scope is not None:
            data["site_scope"] = list(self.site_scope)
        return data

    def describe(self) -> str:
        parts = []
        if self.internal_uri is not None:
            before_uri = self.before_internal_uri or "(none)"
            parts.append(f"internal URI {before_uri} -> {self.internal_uri}")
        if self.site_scope is not None:
            before = ", ".join(self.before_site_scope or ()) or "(empty)"
            after = ", ".join(self.site_scope) or "(empty)"
            parts.append(f"site scope {before} -> {after}")
        return f"update Autodiscover of {self.server}: " + "; ".join(parts)

    def invocations(self) -> list[Invocation]:
        params: dict[str, ParamValue] = {"Identity": self.server}
        if self.internal_uri is not None:
            params["AutoDiscoverServiceInternalUri"] = self.internal_uri
        if self.site_scope is not None:
            params["AutoDiscoverSiteScope"] = list(self.site_scope)
        return [Invocation(id=self._id(), cmdlet="Set-ClientAccessServer", parameters=params)]


EXCHANGE_CHANGES: tuple[type[Change], ...] = (
    ArrayCreate,
    ArrayUpdate,
    ArrayDelete,
    BindingChange,
    NlbNodeAdd,
    NlbNodeRemove,
    AutodiscoverChange,
)
"""What the agent carries out. A plan also carries the DNS record changes of
:mod:`casdesired.dns.records`; ``casdesired.plan.plan`` names every kind a plan file may hold."""


def change_from_json(data: Mapping[str, Any], types: Mapping[str, type[Change]]) -> Change:
    """Rebuild a change of one of ``types`` (by kind) from its ``to_json()``; a malformed entry
    raises :class:`BadChange`."""
    kind = data.get("kind")
    cls = types.get(str(kind))
    if cls is None:
        raise BadChange(f"unknown change kind {kind!r}")
    return cls.from_json(data)


def _check_types(change: Change) -> None:
    """Field types of a rebuilt change, so a hand-edited value cannot reach a cmdlet as junk."""
    for f in fields(change):
        value = getattr(change, f.name)
        expected = str(f.type)
        ok = True
        if expected == "str":
            ok = isinstance(value, str)
        elif expected == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif expected == "str | None":
            ok = value is None or isinstance(value, str)
        elif expected == "bool":
            ok = isinstance(value, bool)
        if not ok:
            raise BadChange(f"change {change.kind}: {f.name!r} has the wrong type")

"""The objects of the lab's Exchange organisation, as plain mutable records.

No behaviour beyond (de)serialisation lives here: rules are in :mod:`.state`, parameter binding
in :mod:`.cmdlets`. Field names follow the state file, which people read and edit by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

ROLE_ORDER = ("Mailbox", "ClientAccess", "UnifiedMessaging", "HubTransport", "Edge")
"""The order Exchange lists ``ServerRole`` flags in (it is an enum of flags)."""

_VERSION = re.compile(r"Version (\d+)\.(\d+)")


@dataclass
class Behaviour:
    """Where ../shared marks Exchange behaviour [OPEN]: each choice is a switch, here only.

    Stored in the state file under ``settings`` so a test (or the control API) can flip it.
    """

    one_array_per_site: bool = True
    """Refuse a second CAS array in an AD site (New/Set -Site). Unconfirmed in 2010 code."""
    databases_follow_array_fqdn: bool = True
    """After Set-ClientAccessArray -Fqdn, bound databases show the new FQDN (the value is a
    pointer to the array). False: they keep showing the FQDN they were bound with."""
    nlb_drain_seconds: float = 0.0
    """How long Stop-NlbClusterNode -Drain keeps a node Draining before it is Stopped."""
    orphans_show_blank: bool = True
    """After Remove-ClientAccessArray, databases that pointed at it show a blank
    RpcClientAccessServer (2013 code: the legacyDN no longer resolves; field §9). False: they
    keep showing the FQDN they were bound with."""
    remove_array_in_use_refused: bool = False
    """Remove-ClientAccessArray refuses while databases point at the array. [OPEN] for 2010;
    2013's code does not check, so the lab does not either unless this is set."""
    object_cost_ms: float = 0.02
    """The cost model: server time, in milliseconds, charged for every object a cmdlet
    returns (a mailbox of Get-Mailbox, a database of Get-MailboxDatabase...), whether the agent
    selects its properties or only counts it. Over remote PowerShell every object is
    serialised across the session; a few milliseconds each is a plausible figure for a real
    organisation (an estimate: bench/mailbox_count_bench.py uses 2 ms). The default keeps the
    suite quick while still making work proportional to what a cmdlet returns."""

    def to_json(self) -> dict[str, Any]:
        return {
            "one_array_per_site": self.one_array_per_site,
            "databases_follow_array_fqdn": self.databases_follow_array_fqdn,
            "nlb_drain_seconds": self.nlb_drain_seconds,
            "orphans_show_blank": self.orphans_show_blank,
            "remove_array_in_use_refused": self.remove_array_in_use_refused,
            "object_cost_ms": self.object_cost_ms,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Behaviour:
        defaults = cls()
        unknown = set(data) - set(defaults.to_json())
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        return cls(
            one_array_per_site=_bool(data.get("one_array_per_site", True)),
            databases_follow_array_fqdn=_bool(data.get("databases_follow_array_fqdn", True)),
            nlb_drain_seconds=float(data.get("nlb_drain_seconds", 0.0)),
            orphans_show_blank=_bool(data.get("orphans_show_blank", defaults.orphans_show_blank)),
            remove_array_in_use_refused=_bool(
                data.get("remove_array_in_use_refused", defaults.remove_array_in_use_refused)
            ),
            object_cost_ms=_cost(data.get("object_cost_ms", defaults.object_cost_ms)),
        )


@dataclass
class AdSite:
    name: str
    guid: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "guid": self.guid}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AdSite:
        return cls(name=_str(data["name"]), guid=_str(data["guid"]))


@dataclass
class Server:
    """An Exchange server; the Client Access role carries the Autodiscover settings."""

    name: str
    fqdn: str
    site: str
    roles: list[str]
    version: str
    """``AdminDisplayVersion``, e.g. ``Version 14.3 (Build 123.4)``."""
    interfaces: list[str] = field(default_factory=lambda: ["LAN", "NLB"])
    """Network interface names, for the NLB cmdlets' -InterfaceName checks."""
    autodiscover_internal_uri: str | None = None
    autodiscover_site_scope: list[str] = field(default_factory=list)

    @property
    def is_cas(self) -> bool:
        return "ClientAccess" in self.roles

    @property
    def is_mailbox(self) -> bool:
        return "Mailbox" in self.roles

    @property
    def major_version(self) -> int:
        match = _VERSION.match(self.version)
        return int(match.group(1)) if match else 0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "fqdn": self.fqdn,
            "site": self.site,
            "roles": list(self.roles),
            "version": self.version,
            "interfaces": list(self.interfaces),
        }
        if self.is_cas:
            data["autodiscover_internal_uri"] = self.autodiscover_internal_uri
            data["autodiscover_site_scope"] = list(self.autodiscover_site_scope)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Server:
        roles = [_str(r) for r in data["roles"]]
        bad = [r for r in roles if r not in ROLE_ORDER]
        if bad:
            raise ValueError(f"server {data['name']!r}: unknown roles {bad}")
        version = _str(data["version"])
        if not _VERSION.match(version):
            raise ValueError(f"server {data['name']!r}: version {version!r} is not "
                             "'Version <major>.<minor> (Build ...)'")
        uri = data.get("autodiscover_internal_uri")
        return cls(
            name=_str(data["name"]),
            fqdn=_str(data["fqdn"]),
            site=_str(data["site"]),
            roles=sorted(roles, key=ROLE_ORDER.index),
            version=version,
            interfaces=[_str(i) for i in data.get("interfaces", ["LAN", "NLB"])],
            autodiscover_internal_uri=None if uri is None else _str(uri),
            autodiscover_site_scope=[_str(s) for s in data.get("autodiscover_site_scope") or []],
        )


@dataclass
class CasArray:
    name: str
    fqdn: str
    site: str
    guid: str
    legacy_dn: str
    """``ExchangeLegacyDN``: set at creation, unchanged by a rename (as in AD)."""
    when_created: str
    when_changed: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fqdn": self.fqdn,
            "site": self.site,
            "guid": self.guid,
            "legacy_dn": self.legacy_dn,
            "when_created": self.when_created,
            "when_changed": self.when_changed,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CasArray:
        return cls(**{k: _str(data[k]) for k in (
            "name", "fqdn", "site", "guid", "legacy_dn", "when_created", "when_changed")})


@dataclass
class RpcPointer:
    """What a database's RpcClientAccessServer points at: an array (by Guid) or a server."""

    kind: Literal["array", "server"]
    target: str
    """The array's Guid, or the server's name."""
    shown: str
    """The FQDN as it was when bound; what the database shows if the target is gone (or, with
    ``databases_follow_array_fqdn`` off, always)."""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "shown": self.shown}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RpcPointer:
        kind = data["kind"]
        if kind not in ("array", "server"):
            raise ValueError(f"RpcClientAccessServer kind {kind!r} is neither array nor server")
        return cls(kind=kind, target=_str(data["target"]), shown=_str(data["shown"]))


@dataclass
class MailboxDatabase:
    name: str
    server: str
    rpc_client_access_server: RpcPointer | None
    mailboxes: int
    recovery: bool = False

    def to_json(self) -> dict[str, Any]:
        rpc = self.rpc_client_access_server
        return {
            "name": self.name,
            "server": self.server,
            "rpc_client_access_server": rpc.to_json() if rpc else None,
            "mailboxes": self.mailboxes,
            "recovery": self.recovery,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MailboxDatabase:
        rpc = data.get("rpc_client_access_server")
        mailboxes = data.get("mailboxes", 0)
        if not isinstance(mailboxes, int) or isinstance(mailboxes, bool) or mailboxes < 0:
            raise ValueError(f"database {data['name']!r}: mailboxes must be a count")
        return cls(
            name=_str(data["name"]),
            server=_str(data["server"]),
            rpc_client_access_server=RpcPointer.from_json(rpc) if rpc else None,
            mailboxes=mailboxes,
            recovery=_bool(data.get("recovery", False)),
        )


@dataclass
class NlbNode:
    name: str
    state: str
    """``Converged``, ``Draining``, ``Stopped``, ``Suspended``..."""
    interface: str
    priority: int
    drain_until: float | None = None
    """Wall-clock time (epoch seconds) at which a Draining node becomes Stopped."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "interface": self.interface,
            "priority": self.priority,
            "drain_until": self.drain_until,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NlbNode:
        until = data.get("drain_until")
        return cls(
            name=_str(data["name"]),
            state=_str(data["state"]),
            interface=_str(data["interface"]),
            priority=int(data["priority"]),
            drain_until=None if until is None else float(until),
        )


@dataclass
class NlbCluster:
    """A Windows NLB cluster, keyed by the host it was created on (the cluster host)."""

    host: str
    name: str
    ip_address: str
    subnet_mask: str
    mode: str
    nodes: list[NlbNode]

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "name": self.name,
            "ip_address": self.ip_address,
            "subnet_mask": self.subnet_mask,
            "mode": self.mode,
            "nodes": [n.to_json() for n in sorted(self.nodes, key=lambda n: n.priority)],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NlbCluster:
        return cls(
            host=_str(data["host"]),
            name=_str(data["name"]),
            ip_address=_str(data["ip_address"]),
            subnet_mask=_str(data["subnet_mask"]),
            mode=_str(data["mode"]),
            nodes=[NlbNode.from_json(n) for n in data.get("nodes") or []],
        )


def _cost(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e4:
        raise ValueError(f"object_cost_ms must be a number of milliseconds, not {value!r}")
    return float(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value

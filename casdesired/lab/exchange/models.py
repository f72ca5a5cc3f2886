"""The objects of the lab's Exchange organisation, as plain mutable records.

No behaviour beyond (de)serialisation lives here: rules are in :mod:`.state`, parameter binding
in :mod:`.cmdlets`, the lab's switches in :mod:`.settings` (:class:`Behaviour`, re-exported here).
Field names follow the state file, which people read and edit by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from casdesired.lab.exchange.settings import POWERSHELL_STDIN as POWERSHELL_STDIN
from casdesired.lab.exchange.settings import Behaviour as Behaviour

ROLE_ORDER = ("Mailbox", "ClientAccess", "UnifiedMessaging", "HubTransport", "Edge")
"""The order Exchange lists ``ServerRole`` flags in (it is an enum of flags)."""

_VERSION = re.compile(r"Version (\d+)\.(\d+)")
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
    registry: dict[str, int | str] = field(default_factory=dict)
    """Registry values under ``HKLM\\SYSTEM\\CurrentControlSet\\Services`` that casdesired
    reads (the static RPC ports), by ``Key\\Value`` (``MSExchangeRPC\\ParametersSystem\\TCP/IP
    Port``): a number is a REG_DWORD, a string a REG_SZ."""
    nlb_module: bool = True
    """The NLB feature's PowerShell module (NetworkLoadBalancingClusters) is installed."""
    reachable: bool = True
    """Other computers reach it over the network (WinRM, WMI). Off: a PSSession or WMI
    connection to it fails as to a host that is down or behind a firewall."""

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
        if self.registry:
            data["registry"] = dict(sorted(self.registry.items()))
        if not self.nlb_module:
            data["nlb_module"] = False
        if not self.reachable:
            data["reachable"] = False
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
            registry={
                _str(k): _registry_value(v) for k, v in (data.get("registry") or {}).items()
            },
            nlb_module=_bool(data.get("nlb_module", True)),
            reachable=_bool(data.get("reachable", True)),
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
    """Mailboxes of users in the organisation's own (root) domain."""
    recovery: bool = False
    child_mailboxes: dict[str, int] = field(default_factory=dict)
    """Mailboxes of users in child domains of the forest, by domain: Get-Mailbox shows them
    only where Set-AdServerSettings -ViewEntireForest $true ran in the session (field §3)."""

    def to_json(self) -> dict[str, Any]:
        rpc = self.rpc_client_access_server
        data: dict[str, Any] = {
            "name": self.name,
            "server": self.server,
            "rpc_client_access_server": rpc.to_json() if rpc else None,
            "mailboxes": self.mailboxes,
            "recovery": self.recovery,
        }
        if self.child_mailboxes:
            data["child_mailboxes"] = dict(sorted(self.child_mailboxes.items()))
        return data

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
            child_mailboxes={
                _str(domain): _count(n) for domain, n in (data.get("child_mailboxes") or {}).items()
            },
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
    converging_until: float | None = None
    """Wall-clock time (epoch seconds) until which the cluster reconverges after a node
    joined or left: its converged nodes show Converging meanwhile."""

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "name": self.name,
            "ip_address": self.ip_address,
            "subnet_mask": self.subnet_mask,
            "mode": self.mode,
            "nodes": [n.to_json() for n in sorted(self.nodes, key=lambda n: n.priority)],
            "converging_until": self.converging_until,
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
            converging_until=(
                None if data.get("converging_until") is None else float(data["converging_until"])
            ),
        )


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"expected a count, got {value!r}")
    return value


def _registry_value(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"a registry value is a number (REG_DWORD) or a string, not {value!r}")
    if isinstance(value, int) and not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"a REG_DWORD is 0 to 4294967295, not {value}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value

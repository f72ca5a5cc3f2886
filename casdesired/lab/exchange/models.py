"""The objects of the lab's Exchange organisation, as plain mutable records.

No behaviour beyond (de)serialisation lives here: rules are in :mod:`.state`, parameter binding
in :mod:`.cmdlets`. Field names follow the state file, which people read and edit by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, Literal

ROLE_ORDER = ("Mailbox", "ClientAccess", "UnifiedMessaging", "HubTransport", "Edge")
"""The order Exchange lists ``ServerRole`` flags in (it is an enum of flags)."""

_VERSION = re.compile(r"Version (\d+)\.(\d+)")
POWERSHELL_STDIN = ("works", "hangs", "empty")
"""The readings of ``Behaviour.powershell_stdin``."""


@dataclass
class Behaviour:
    """The lab's switches: where ../shared marks Exchange behaviour [OPEN], each reading is a
    switch defaulting to the stricter one; plus the field's timings and limits, and the cost
    model. Stored in the state file under ``settings`` so a test (or the control API) can flip
    them. docs/lab.md lists them all.
    """

    one_array_per_site: bool = True
    """Refuse a second CAS array in an AD site (New/Set -Site). Unconfirmed in 2010 code."""
    databases_follow_array_fqdn: bool = True
    """After Set-ClientAccessArray -Fqdn, bound databases show the new FQDN (the value is a
    pointer to the array). False: they keep showing the FQDN they were bound with."""
    nlb_drain_seconds: float = 0.0
    """How long the existing connections of a node take to drain: Stop-NlbClusterNode -Drain
    blocks that long (or until its -Timeout), then shows Stopped."""
    nlb_timeout_unit: str = "minutes"
    """[OPEN] the unit of Stop-NlbClusterNode -Timeout: ``minutes`` (the 2012 help, and
    Stop-NlbCluster's in every version) or ``seconds`` (the 2012 R2+ help)."""
    nlb_convergence_seconds: float = 1.0
    """How long a cluster reconverges after Add-/Remove-NlbClusterNode (field §6: heartbeats
    every second, ~5 s to notice, ~10 s in all); its nodes show Converging meanwhile."""
    nlb_add_reaches_new_node: bool = False
    """[OPEN, inferred] Add-NlbClusterNode also configures the new node over WMI, so outside a
    delegating logon it fails unless it runs on that node. Off: only -HostName counts."""
    orphans_show_blank: bool = True
    """After Remove-ClientAccessArray, databases that pointed at it show a blank
    RpcClientAccessServer (2013 code: the legacyDN no longer resolves; field §9). False: they
    keep showing the FQDN they were bound with."""
    remove_array_in_use_refused: bool = False
    """Remove-ClientAccessArray refuses while databases point at the array. [OPEN] for 2010;
    2013's code does not check, so the lab does not either unless this is set."""
    exchange_session_limit: int = 18
    """Exchange's throttling policy PowerShellMaxConcurrency: concurrent /PowerShell sessions
    per user (field §5); leaked sessions count until the app pool recycles."""
    powershell_stdin: str = "works"
    """How powershell.exe 2.0 treats the redirected stdin WinRM gives it (field §5: reported to
    hang, or to misread it, on some hosts): ``works``; ``hangs`` (a powershell.exe started
    without ``-InputFormat None`` never gets past reading stdin, until its process is killed);
    ``empty`` (it reads nothing). Default ``works``, not the stricter reading: stdin is
    casdesired's primary delivery and must be tested working; tests switch the failures on."""
    object_cost_ms: float = 0.02
    """The cost model: server time, in milliseconds, charged for every object a cmdlet
    returns (a mailbox of Get-Mailbox, a database of Get-MailboxDatabase...), whether the agent
    selects its properties or only counts it. Over remote PowerShell every object is
    serialised across the session; a few milliseconds each is a plausible figure for a real
    organisation (an estimate: bench/mailbox_count_bench.py uses 2 ms). The default keeps the
    suite quick while still making work proportional to what a cmdlet returns."""
    # The endpoint host as Windows would report it (what `casdesired doctor` checks). The
    # defaults are a stock Windows Server 2008 R2 SP1 Exchange 2010 server; each can be set to
    # what makes one of doctor's checks fail, and the lab then behaves as that host would.
    host_os: str = "Microsoft Windows Server 2008 R2 Enterprise"
    host_os_version: str = "6.1.7601.65536"
    host_powershell_version: str = "2.0"
    host_clr_version: str = "2.0.50727.5485"
    host_execution_policy_gpo: str = "Undefined"
    """The execution policy Group Policy sets (MachinePolicy): it beats the agent's
    ``-ExecutionPolicy Bypass``. ``Undefined``: none (the agent's Bypass is in force)."""
    host_dotnet35: bool = True
    """.NET 3.5's System.Web.Extensions is installed. Off: the agent cannot load its JSON
    serializer and stops before anything else, as PowerShell 2.0 would."""
    host_gzip_round_trip: bool = True
    """Off: GZipStream's round trip gives back other bytes (a damaged .NET Framework; no known
    cause on a working host, here so that doctor's check of it can be seen failing)."""
    host_clock_skew_seconds: float = 0.0
    """How far the host's clock is ahead of the lab's (negative: behind): every time the host
    reads or writes (lock leases, the clock doctor reads) is off by this much."""
    lock_directory_writable: bool = True
    """The account may create and write ``%ProgramData%\\casdesired``. Off: every open of the
    lock file fails with "Access to the path ... is denied", as NTFS would refuse it."""
    rbac_not_granted: tuple[str, ...] = ()
    """What the account's RBAC role assignments do not give it, as ``Cmdlet`` or ``Cmdlet
    -Parameter`` entries: Exchange's remote /PowerShell session does not publish them (an
    unpublished cmdlet "is not recognized", an unpublished parameter "cannot be found"). The
    snap-in bypasses RBAC and ignores this."""

    server_culture: str = "en-US"
    """[inferred] The regional format the Exchange server reads a date given as TEXT in (an
    ExDateTime parameter such as Search-AdminAuditLog -StartDate): ``en-US`` (M/d/yyyy),
    ``en-GB`` (dd/MM/yyyy) or ``de-DE`` (dd.MM.yyyy), optionally with a time. Stricter than
    .NET's lenient parse: any other text is refused, so a client must send dates as dates."""
    audit_search_role: bool = True
    """The lab's account holds the View-Only Audit Logs role (Organization Management does).
    Off: through /PowerShell, Search-AdminAuditLog does not exist for it (RBAC); the snap-in
    bypasses RBAC."""

    def to_json(self) -> dict[str, Any]:
        return {
            f.name: list(value) if isinstance(value := getattr(self, f.name), tuple) else value
            for f in fields(self)
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Behaviour:
        defaults = cls()
        known = {f.name: f for f in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name in known:
            value = data.get(name, getattr(defaults, name))
            checked = _SETTING_CHECKS[name](value)
            if checked is None:
                raise ValueError(f"setting {name}: {value!r} is not allowed")
            values[name] = checked
        return cls(**values)


def _as_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _as_seconds(value: Any) -> float | None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if number and 0 <= value < 1e6 else None


def _as_count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


EXECUTION_POLICIES = (
    "Undefined", "Restricted", "AllSigned", "RemoteSigned", "Unrestricted", "Bypass",
)
_SETTING_CHECKS: dict[str, Any] = {
    "one_array_per_site": _as_bool,
    "databases_follow_array_fqdn": _as_bool,
    "nlb_drain_seconds": _as_seconds,
    "nlb_timeout_unit": lambda v: v if v in ("minutes", "seconds") else None,
    "nlb_convergence_seconds": _as_seconds,
    "nlb_add_reaches_new_node": _as_bool,
    "orphans_show_blank": _as_bool,
    "remove_array_in_use_refused": _as_bool,
    "exchange_session_limit": _as_count,
    "powershell_stdin": lambda v: v if v in POWERSHELL_STDIN else None,
    "object_cost_ms": lambda v: _as_seconds(v) if _as_seconds(v) is not None and v < 1e4 else None,
    "host_os": lambda v: _as_text(v),
    "host_os_version": lambda v: _as_text(v),
    "host_powershell_version": lambda v: _as_text(v),
    "host_clr_version": lambda v: _as_text(v),
    "host_execution_policy_gpo": lambda v: v if v in EXECUTION_POLICIES else None,
    "host_dotnet35": _as_bool,
    "host_gzip_round_trip": _as_bool,
    "host_clock_skew_seconds": lambda v: (
        float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e8
        else None
    ),
    "lock_directory_writable": _as_bool,
    "rbac_not_granted": lambda v: _as_grants(v),
    "server_culture": lambda v: v if v in ("en-US", "en-GB", "de-DE") else None,
    "audit_search_role": _as_bool,
}

_GRANT = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+(?: -[A-Za-z0-9]+)?$")


def _as_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _as_grants(value: Any) -> tuple[str, ...] | None:
    """``["Set-MailboxDatabase", "Set-ClientAccessServer -AutoDiscoverSiteScope"]``."""
    if not isinstance(value, (list, tuple)):
        return None
    if not all(isinstance(v, str) and _GRANT.match(v.strip()) for v in value):
        return None
    return tuple(v.strip() for v in value)


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

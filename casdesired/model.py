"""The estate model: one shape for what the YAML declares and what Exchange reports.

The desired side (``casdesired.desired``) and the live side (``casdesired.live``) both produce an
:class:`Estate`, so the diff (``casdesired.changes``) compares like with like.

Identities are stable, case-insensitive keys, as Exchange treats them:

* a site by its AD site name,
* a CAS server by its name (NetBIOS host name, as ``Get-ExchangeServer`` shows it),
* a CAS array by its **FQDN** — never by its Name, which Exchange cannot resolve when it holds
  spaces,
* a mailbox database by its name.

Every object may carry ``source``: where the desired state declared it. It never takes part in
equality, so a desired object equals its live twin when their content matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from casdesired.findings import Location


def key(identity: str) -> str:
    """The comparison key for an Exchange identity (names and FQDNs are case-insensitive)."""
    return identity.strip().rstrip(".").lower()


_VERSION_MAJOR = re.compile(r"Version\s+(\d+)\.", re.IGNORECASE)


def exchange_major(version: str | None) -> int | None:
    """14 for ``Version 14.3 (Build 123.4)`` (``AdminDisplayVersion``); None when unknown.

    14 is Exchange 2010; 15 and later are 2013+, which casdesired refuses to manage.
    """
    match = _VERSION_MAJOR.search(version or "")
    return int(match.group(1)) if match else None


class LoadBalancerKind(str, Enum):
    NLB = "nlb"
    """Windows Network Load Balancing; casdesired manages its membership."""
    EXTERNAL = "external"
    """A hardware or external balancer; casdesired only checks DNS and reachability."""


class Ensure(str, Enum):
    PRESENT = "present"
    ABSENT = "absent"


@dataclass(frozen=True)
class NlbNode:
    """A host in a Windows NLB cluster, named as the CAS server it is."""

    server: str
    interface: str | None = None
    state: str | None = None
    """Live only: ``Converged``, ``Converged(default)``, ``Stopped``, ``Suspended``, ..."""
    source: Location | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        return key(self.server)

    @property
    def converged(self) -> bool:
        return (self.state or "").lower().startswith("converged")


@dataclass(frozen=True)
class LoadBalancer:
    """What sits behind an array's FQDN."""

    kind: LoadBalancerKind
    vip: str
    cluster_host: str | None = None
    """NLB: the host the NLB cmdlets target with ``-HostName``."""
    interface: str | None = None
    """NLB: the cluster interface name on the hosts (``-InterfaceName``)."""
    nodes: tuple[NlbNode, ...] = ()
    """NLB: the cluster's hosts, sorted by server key."""
    source: Location | None = field(default=None, compare=False, repr=False)

    def node(self, server: str) -> NlbNode | None:
        k = key(server)
        return next((n for n in self.nodes if n.key == k), None)


@dataclass(frozen=True)
class CasServer:
    """An Exchange 2010 server with the Client Access role, in one AD site."""

    name: str
    fqdn: str
    site: str
    autodiscover_internal_uri: str | None = None
    """``AutoDiscoverServiceInternalUri``; desired side: None means 'not managed'."""
    autodiscover_site_scope: tuple[str, ...] | None = None
    """``AutoDiscoverSiteScope``; desired side: None means 'not managed'."""
    version: str | None = field(default=None, compare=False)
    """Live only: ``AdminDisplayVersion``, e.g. ``Version 14.3 (Build 123.4)``."""
    source: Location | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        return key(self.name)


@dataclass(frozen=True)
class CasArray:
    """A Client Access array: one per AD site, addressed by FQDN."""

    fqdn: str
    name: str
    site: str
    load_balancer: LoadBalancer | None = None
    """Desired side always has one; live side has one when its NLB cluster was read."""
    members: tuple[str, ...] = field(default=(), compare=False)
    """Live only, computed by Exchange: every CAS of the array's site."""
    ensure: Ensure = Ensure.PRESENT
    source: Location | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        return key(self.fqdn)


@dataclass(frozen=True)
class DatabaseBinding:
    """Which CAS array (or server) a mailbox database's ``RpcClientAccessServer`` names."""

    database: str
    rpc_client_access_server: str
    """An array FQDN, or a server FQDN/name, as Exchange shows it."""
    server: str | None = field(default=None, compare=False)
    """Live only: the mailbox server hosting the active copy."""
    mailbox_count: int | None = field(default=None, compare=False)
    """Live only: mailboxes on the database (the users a rebinding affects)."""
    source: Location | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        return key(self.database)


@dataclass(frozen=True)
class Site:
    """An AD site and what casdesired manages in it."""

    name: str
    servers: tuple[CasServer, ...] = ()
    array: CasArray | None = None
    prune: bool = False
    """Desired only: live objects of this site the YAML does not mention become deletes."""
    source: Location | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        return key(self.name)


@dataclass
class Estate:
    """A whole organisation (or the managed part of it), indexed by identity key."""

    sites: dict[str, Site] = field(default_factory=dict)
    servers: dict[str, CasServer] = field(default_factory=dict)
    arrays: dict[str, CasArray] = field(default_factory=dict)
    databases: dict[str, DatabaseBinding] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        sites: Iterable[Site] = (),
        databases: Iterable[DatabaseBinding] = (),
        extra_servers: Iterable[CasServer] = (),
        extra_arrays: Iterable[CasArray] = (),
    ) -> Estate:
        """Index sites (with their servers and arrays) and databases by key."""
        estate = cls()
        for site in sites:
            estate.sites[site.key] = site
            for server in site.servers:
                estate.servers[server.key] = server
            if site.array is not None:
                estate.arrays[site.array.key] = site.array
        for server in extra_servers:
            estate.servers.setdefault(server.key, server)
        for array in extra_arrays:
            estate.arrays.setdefault(array.key, array)
        for db in databases:
            estate.databases[db.key] = db
        return estate

    def array_in_site(self, site: str) -> CasArray | None:
        k = key(site)
        return next((a for a in self.arrays.values() if key(a.site) == k), None)

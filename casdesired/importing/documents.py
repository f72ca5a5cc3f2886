"""What ``casdesired import`` writes, before it is YAML: one document per AD site, and notes.

A :class:`SiteDocument` holds exactly what its site file will declare (servers, the array and
its load balancer, the database bindings) in the order it is written, plus :class:`Note` s: what
the live organisation has that the file cannot declare, each said as a comment in the file and
as a line of the summary — never dropped in silence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from casdesired import model
from casdesired.desired.config import Policy


class Section(str, Enum):
    """Where in a site file a note is written (after that section's declarations)."""

    SERVERS = "servers"
    ARRAY = "array"
    DATABASES = "databases"


@dataclass(frozen=True)
class Note:
    """Something of the live organisation the YAML does not declare, and why."""

    section: Section
    text: str
    """The comment, names already written as YAML scalars (one line each, never a break)."""
    kind: str
    """A stable word for the summary's grouping and for tests: ``exchange-2013-server``,
    ``database-on-exchange-2013``, ``database-orphaned``, ``database-bound-elsewhere``,
    ``database-bound-to-server``, ``nlb-cluster-unmatched``, ``nlb-node-not-member``,
    ``array-not-declared``, ``autodiscover-not-managed``, ``load-balancer-todo``, ..."""
    subject: str = ""
    """The name it is about (a server, database, array or cluster), as Exchange spells it."""


@dataclass(frozen=True)
class ServerEntry:
    name: str
    fqdn: str
    internal_uri: str | None = None
    site_scope: tuple[str, ...] | None = None
    """None: not written (not managed)."""

    @property
    def key(self) -> str:
        return model.key(self.name)


@dataclass(frozen=True)
class LoadBalancerEntry:
    type: str
    """``nlb`` or ``external``."""
    vip: str | None
    """None: unknown — written as ``TODO`` with a comment, which validate reports."""
    cluster_host: str | None = None
    interface: str | None = None
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArrayEntry:
    name: str
    fqdn: str
    load_balancer: LoadBalancerEntry
    todo: str | None = None
    """Why the VIP is unknown (the TODO comment above it), when it is."""


@dataclass
class SiteDocument:
    """One site file's content."""

    site: str
    servers: list[ServerEntry] = field(default_factory=list)
    array: ArrayEntry | None = None
    names: list[str] = field(default_factory=list)
    """Databases bound to the array, by name (sorted)."""
    patterns: list[str] = field(default_factory=list)
    """Globs matching exactly the rest of the array's databases (``--patterns``)."""
    server_bindings: list[tuple[str, str]] = field(default_factory=list)
    """(database, server name), sorted by database."""
    notes: list[Note] = field(default_factory=list)
    array_databases: int = 0
    """How many databases bind to the array (the names plus what the patterns match)."""
    bound_mailboxes: int | None = None
    """Mailboxes of the databases this file binds (None: not counted)."""

    @property
    def key(self) -> str:
        return model.key(self.site)

    def notes_in(self, section: Section) -> list[Note]:
        return [n for n in self.notes if n.section is section]

    def data(self) -> dict[str, object]:
        """The file as plain data: what reading the written YAML must give back exactly."""
        out: dict[str, object] = {"casdesired": 1, "kind": "site", "site": self.site}
        if self.servers:
            out["servers"] = [_server_data(s) for s in self.servers]
        if self.array is not None:
            out["array"] = _array_data(self.array)
        databases: dict[str, object] = {}
        if self.names:
            databases["names"] = list(self.names)
        if self.patterns:
            databases["patterns"] = list(self.patterns)
        if self.server_bindings:
            databases["server_bindings"] = [
                {"database": db, "server": server} for db, server in self.server_bindings
            ]
        if databases:
            out["databases"] = databases
        return out


def _server_data(server: ServerEntry) -> dict[str, object]:
    data: dict[str, object] = {"name": server.name, "fqdn": server.fqdn}
    autodiscover: dict[str, object] = {}
    if server.internal_uri is not None:
        autodiscover["internal_uri"] = server.internal_uri
    if server.site_scope is not None:
        autodiscover["site_scope"] = list(server.site_scope)
    if autodiscover:
        data["autodiscover"] = autodiscover
    return data


def _array_data(array: ArrayEntry) -> dict[str, object]:
    lb = array.load_balancer
    balancer: dict[str, object] = {"type": lb.type, "vip": lb.vip if lb.vip else TODO}
    if lb.type == "nlb":
        balancer.update(
            cluster_host=lb.cluster_host, interface=lb.interface, members=list(lb.members)
        )
    return {"name": array.name, "fqdn": array.fqdn, "load_balancer": balancer}


_DEFAULTS = Policy()
SAFE_POLICY: dict[str, int | bool] = {
    "max_rebind_percent": int(_DEFAULTS.max_rebind_percent),
    "min_databases_for_threshold": _DEFAULTS.min_databases_for_threshold,
    "allow_prune": _DEFAULTS.allow_prune,
}
"""The policy import writes: the documented defaults (docs/desired-state.md) — the mass-rebind
threshold on, pruning off."""

TODO = "TODO"
"""The VIP written when import cannot tell it: not an IP address, so validate reports it."""


@dataclass(frozen=True)
class OrganisationDocument:
    """The organisation file import writes when the directory has none (from its options):
    how to connect, with the NAMES of the credential variables, resolvers, safe policy."""

    name: str
    endpoint: str
    transport: str
    exchange_mode: str = "remote"
    exchange_uri: str | None = None
    tls_validate: bool = True
    ca_bundle: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    cert_pem_env: str | None = None
    cert_key_env: str | None = None
    resolvers: tuple[str, ...] = ()
    external_resolvers: tuple[str, ...] = ()

    def data(self) -> dict[str, object]:
        """The file as plain data (what reading the written YAML must give back)."""
        exchange: dict[str, object] = {"mode": self.exchange_mode}
        if self.exchange_uri is not None:
            exchange["uri"] = self.exchange_uri
        tls: dict[str, object] = {"validate": self.tls_validate}
        if self.ca_bundle is not None:
            tls["ca_bundle"] = self.ca_bundle
        credentials = {
            key: value
            for key, value in (
                ("username_env", self.username_env),
                ("password_env", self.password_env),
                ("cert_pem_env", self.cert_pem_env),
                ("cert_key_env", self.cert_key_env),
            )
            if value is not None
        }
        connection: dict[str, object] = {
            "endpoint": self.endpoint,
            "transport": self.transport,
            "exchange": exchange,
            "tls": tls,
        }
        if credentials:
            connection["credentials"] = credentials
        return {
            "casdesired": 1,
            "kind": "organisation",
            "name": self.name,
            "connection": connection,
            "dns": {
                "resolvers": list(self.resolvers),
                "external_resolvers": list(self.external_resolvers),
            },
            "policy": dict(SAFE_POLICY),
        }

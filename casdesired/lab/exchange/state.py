"""The lab organisation's state and Exchange's rules over it.

:class:`OrgState` holds the objects (:mod:`.models`), resolves identities the way Exchange's
``*IdParameter`` types do (:mod:`.identities`), and changes state only through methods that
check every rule *before* changing anything, raising the typed errors of :mod:`.errors`. It
knows nothing of PowerShell parameter binding (:mod:`.cmdlets`) or of the wire. Not
thread-safe by itself: the :class:`~casdesired.lab.exchange.organisation.Organisation` holds
one lock around it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from casdesired.lab.dns import normalise_records
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.auditlog import AuditLog
from casdesired.lab.exchange.identities import ADMIN_GROUP, Identities
from casdesired.lab.exchange.identities import k as _k
from casdesired.lab.exchange.models import (
    AdSite,
    Behaviour,
    CasArray,
    MailboxDatabase,
    NlbCluster,
    RpcPointer,
    Server,
)

STATE_FORMAT = "casdesired-lab-state"
STATE_VERSION = 1
MAX_NAME_LENGTH = 64


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class OrgState(Identities):
    """One Exchange 2010 organisation: sites, servers, arrays, databases, NLB clusters."""

    def __init__(self, data: dict[str, Any]) -> None:
        """Build from a state document (see :meth:`to_json`); raise LabStateError if unusable."""
        try:
            self._parse(data)
        except err.LabStateError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise err.LabStateError(f"lab state is invalid: {detail}") from None

    # ------------------------------------------------------------------ (de)serialisation
    def _parse(self, data: dict[str, Any]) -> None:
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            raise err.LabStateError(f"lab state is not a {STATE_FORMAT} document")
        if data.get("version") != STATE_VERSION:
            raise err.LabStateError(
                f"lab state version {data.get('version')!r} is not supported "
                f"(this casdesired reads version {STATE_VERSION})"
            )
        org = data["organisation"]
        self.seed_name: str = str(data.get("seed", "contoso"))
        self.org_name: str = str(org["name"])
        self.domain: str = str(org["domain"])
        self.domain_controller: str = str(org["domain_controller"])
        self.endpoint_host: str = str(org["endpoint_host"])
        self.settings = Behaviour.from_json(data.get("settings") or {})
        rnd = data.get("random") or {}
        self.random_seed: int = int(rnd.get("seed", 0))
        self.random_draws: int = int(rnd.get("draws", 0))
        self.sites: dict[str, AdSite] = {}
        for raw in data["sites"]:
            site = AdSite.from_json(raw)
            self.sites[_k(site.name)] = site
        self.servers: dict[str, Server] = {}
        for raw in data["servers"]:
            server = Server.from_json(raw)
            self._require_site(server.site, f"server {server.name!r}")
            self.servers[_k(server.name)] = server
        self.arrays: dict[str, CasArray] = {}
        for raw in data["arrays"]:
            array = CasArray.from_json(raw)
            self._require_site(array.site, f"array {array.fqdn!r}")
            self.arrays[array.guid] = array
        self.databases: dict[str, MailboxDatabase] = {}
        for raw in data["databases"]:
            db = MailboxDatabase.from_json(raw)
            if _k(db.server) not in self.servers:
                raise ValueError(f"database {db.name!r}: unknown server {db.server!r}")
            self.databases[_k(db.name)] = db
        self.clusters: dict[str, NlbCluster] = {}
        for raw in data["nlb_clusters"]:
            cluster = NlbCluster.from_json(raw)
            self.clusters[_k(cluster.host)] = cluster
        # Files the agent keeps on the endpoint host (the lock, applied plans): path → text.
        self.files: dict[str, str] = {
            str(k): str(v) for k, v in (data.get("files") or {}).items()
        }
        if _k(self.endpoint_host) not in self.servers:
            raise ValueError(f"endpoint host {self.endpoint_host!r} is not a server")
        # The lab DNS server's A records (casdesired.lab.dns). A state file written before the
        # lab had DNS takes its seed's records, so the example keeps resolving.
        raw_records = data.get("dns_records")
        if raw_records is None:
            raw_records = _seed_dns_records(self.seed_name)
        self.dns_records: dict[str, list[str]] = normalise_records(raw_records)
        # Exchange 2010 SP1's admin audit log: its configuration and entries (.auditlog).
        self.audit = AuditLog.from_json(data.get("admin_audit_log"))

    def _require_site(self, name: str, what: str) -> None:
        if _k(name) not in self.sites:
            raise ValueError(f"{what}: unknown site {name!r}")

    def to_json(self) -> dict[str, Any]:
        """The state document: plain JSON data, lists sorted by name for readable diffs."""
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "seed": self.seed_name,
            "organisation": {
                "name": self.org_name,
                "domain": self.domain,
                "domain_controller": self.domain_controller,
                "endpoint_host": self.endpoint_host,
            },
            "settings": self.settings.to_json(),
            "random": {"seed": self.random_seed, "draws": self.random_draws},
            "sites": [s.to_json() for s in _by_name(self.sites.values())],
            "servers": [s.to_json() for s in _by_name(self.servers.values())],
            "arrays": [a.to_json() for a in _by_name(self.arrays.values())],
            "databases": [d.to_json() for d in _by_name(self.databases.values())],
            "nlb_clusters": [
                c.to_json() for c in sorted(self.clusters.values(), key=lambda c: _k(c.host))
            ],
            **({"files": dict(sorted(self.files.items()))} if self.files else {}),
            "dns_records": {name: list(a) for name, a in sorted(self.dns_records.items())},
            "admin_audit_log": self.audit.to_json(),
        }

    def members(self, site: str) -> list[str]:
        """An array's Members, computed as Exchange does: the Exchange 2010 CAS of its site."""
        return [
            s.name
            for s in _by_name(self.servers.values())
            if s.is_cas and s.major_version == 14 and _k(s.site) == _k(site)
        ]

    def rpc_shown(self, db: MailboxDatabase) -> str | None:
        """What Get-MailboxDatabase shows as RpcClientAccessServer (an FQDN)."""
        pointer = db.rpc_client_access_server
        if pointer is None:
            return None
        if pointer.kind == "server":
            server = self.servers.get(_k(pointer.target))
            return server.fqdn if server else pointer.shown
        array = self.arrays.get(pointer.target)
        if array is not None and self.settings.databases_follow_array_fqdn:
            return array.fqdn
        if array is None and self.settings.orphans_show_blank:
            return ""  # the array's legacyDN no longer resolves: an orphaned pointer
        return pointer.shown

    # ------------------------------------------------------------------ array rules
    def _check_name(self, name: str, *, exclude: CasArray | None = None) -> None:
        if len(name) > MAX_NAME_LENGTH:
            raise err.DataValidationError(err.NAME_TOO_LONG.format(length=len(name)), target=name)
        taken = _k(name) in self.servers or any(
            _k(a.name) == _k(name) for a in self.arrays.values() if a is not exclude
        )
        if taken:
            dn = self.array_dn(CasArray(name, "", "", "", "", "", ""))
            raise err.ObjectAlreadyExists(
                err.NAME_IN_USE.format(dc=self.domain_controller, dn=dn, name=name), target=name
            )

    def _check_site_free(self, site: AdSite, *, exclude: CasArray | None = None) -> None:
        if not self.settings.one_array_per_site:
            return
        for array in self.arrays.values():
            if array is not exclude and _k(array.site) == _k(site.name):
                raise err.RuleViolation(
                    err.ONE_ARRAY_PER_SITE.format(site=site.name, fqdn=array.fqdn),
                    target=site.name,
                )

    def new_array(self, fqdn: str, site: AdSite, name: str | None) -> CasArray:
        """New-ClientAccessArray after binding: Name defaults to the FQDN's host label."""
        name = name if name is not None else fqdn.split(".")[0]
        self._check_name(name)
        self._check_site_free(site)
        now = _now_iso()
        array = CasArray(
            name=name,
            fqdn=fqdn,
            site=site.name,
            guid=self.new_guid(),
            legacy_dn=f"/o={self.org_name}/ou={ADMIN_GROUP}/cn=Configuration/cn=Servers/cn={name}",
            when_created=now,
            when_changed=now,
        )
        self.arrays[array.guid] = array
        return array

    def set_array(
        self, array: CasArray, *, fqdn: str | None, name: str | None, site: AdSite | None
    ) -> bool:
        """Set-ClientAccessArray after binding; False when nothing differed."""
        if name is not None and name != array.name:
            self._check_name(name, exclude=array)
        if site is not None and _k(site.name) != _k(array.site):
            self._check_site_free(site, exclude=array)
        changed = False
        for attr, value in (("name", name), ("fqdn", fqdn), ("site", site.name if site else None)):
            if value is not None and getattr(array, attr) != value:
                setattr(array, attr, value)
                changed = True
        if changed:
            array.when_changed = _now_iso()
        return changed

    def remove_array(self, array: CasArray) -> None:
        """Databases keep pointing at the removed array: they show a blank
        RpcClientAccessServer (or, with ``orphans_show_blank`` off, the FQDN they had)."""
        users = [
            db for db in self.databases.values()
            if db.rpc_client_access_server is not None
            and db.rpc_client_access_server.kind == "array"
            and db.rpc_client_access_server.target == array.guid
        ]
        if users and self.settings.remove_array_in_use_refused:
            raise err.RuleViolation(
                err.ARRAY_IN_USE.format(name=array.name, count=len(users)), target=array.name
            )
        for db in self.databases.values():
            pointer = db.rpc_client_access_server
            if pointer is not None and pointer.kind == "array" and pointer.target == array.guid:
                pointer.shown = array.fqdn
        del self.arrays[array.guid]

    # ------------------------------------------------------------------ databases and CAS
    def set_rpc(self, db: MailboxDatabase, pointer: RpcPointer) -> bool:
        if db.rpc_client_access_server == pointer:
            return False
        db.rpc_client_access_server = pointer
        return True

    def add_databases(self, n: int, site: str, prefix: str, mailboxes: Iterable[int]) -> None:
        """Create databases on the site's first mailbox server, bound as Exchange binds a new
        database: to the site's array, otherwise to the site's first CAS."""
        site_obj = self.find_site(site)
        in_site = [s for s in _by_name(self.servers.values()) if _k(s.site) == _k(site_obj.name)]
        mailbox_server = next((s for s in in_site if s.is_mailbox), None)
        if mailbox_server is None:
            raise err.RuleViolation(f"The site '{site_obj.name}' has no Mailbox server.")
        array = next((a for a in self.arrays.values() if _k(a.site) == _k(site_obj.name)), None)
        cas = next((s for s in in_site if s.is_cas), None)
        if array is not None:
            pointer: RpcPointer | None = RpcPointer("array", array.guid, array.fqdn)
        elif cas is not None:
            pointer = RpcPointer("server", cas.name, cas.fqdn)
        else:
            pointer = None
        width = max(2, len(str(n)))
        names = [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]
        clash = next((name for name in names if _k(name) in self.databases), None)
        if clash is not None:
            raise err.ObjectAlreadyExists(f"The database '{clash}' already exists.", target=clash)
        for name, count in zip(names, mailboxes, strict=False):
            self.databases[_k(name)] = MailboxDatabase(
                name=name,
                server=mailbox_server.name,
                rpc_client_access_server=(
                    RpcPointer(pointer.kind, pointer.target, pointer.shown) if pointer else None
                ),
                mailboxes=count,
            )

    def set_autodiscover(
        self, server: Server, *, uri: str | None, set_uri: bool, scope: list[str] | None
    ) -> bool:
        changed = False
        if set_uri and server.autodiscover_internal_uri != uri:
            server.autodiscover_internal_uri = uri
            changed = True
        if scope is not None and server.autodiscover_site_scope != scope:
            server.autodiscover_site_scope = scope
            changed = True
        return changed

    def settle(self, now: float) -> bool:
        """Let time act (drains end, clusters converge, audit entries age out). True if
        anything changed."""
        from casdesired.lab.exchange.nlb_rules import settle_clusters

        aged = self.audit.age_out(datetime.fromtimestamp(now, timezone.utc))
        return settle_clusters(self, now) or aged

    # ------------------------------------------------------------------ randomness
    def new_guid(self) -> str:
        """A GUID from the seeded generator; the draw count is kept in the state, so a state
        reloaded from file never repeats a GUID it already handed out."""
        rng = random.Random(f"{self.random_seed}:{self.random_draws}")  # noqa: S311 (lab data)
        self.random_draws += 1
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def rng(self, purpose: str) -> random.Random:
        """A seeded generator for one purpose (e.g. mailbox counts of new databases)."""
        rng = random.Random(f"{self.random_seed}:{self.random_draws}:{purpose}")  # noqa: S311
        self.random_draws += 1
        return rng


def _seed_dns_records(seed_name: str) -> dict[str, Any]:
    """The DNS records of the seed a state came from (empty if that seed has none)."""
    from casdesired.lab.exchange.statefile import load_seed

    try:
        records = load_seed(seed_name).get("dns_records")
    except err.LabStateError:
        return {}
    return records if isinstance(records, dict) else {}


def _by_name(items: Iterable[Any]) -> list[Any]:
    return sorted(items, key=lambda item: _k(item.name))

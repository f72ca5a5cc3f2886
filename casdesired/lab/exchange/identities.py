"""How Exchange names the organisation's objects and resolves an identity parameter to one.

The distinguished and canonical names Exchange shows, and the ``*IdParameter`` rules: a site by
name, DN or GUID; an array by FQDN, DN, ExchangeLegacyDN, GUID or a space-free Name; a server by
name or FQDN; a database by name; an RpcClientAccessServer target as an array or a CAS.
:class:`Identities` is part of :class:`~casdesired.lab.exchange.state.OrgState`, over its
objects; it changes nothing.
"""

from __future__ import annotations

import re
import uuid

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.models import (
    AdSite,
    CasArray,
    MailboxDatabase,
    RpcPointer,
    Server,
)

ADMIN_GROUP = "Exchange Administrative Group (FYDIBOHF23SPDLT)"


def k(text: str) -> str:
    """Exchange compares names and FQDNs case-insensitively; a trailing dot is the same host."""
    return text.strip().rstrip(".").lower()


def _as_guid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return None


class Identities:
    """Names and identity resolution over an organisation's objects (see the module doc)."""

    org_name: str
    domain: str
    domain_controller: str
    sites: dict[str, AdSite]
    servers: dict[str, Server]
    arrays: dict[str, CasArray]
    databases: dict[str, MailboxDatabase]

    @property
    def domain_dn(self) -> str:
        return ",".join(f"DC={part}" for part in self.domain.split("."))

    def site_canonical(self, site: str) -> str:
        return f"{self.domain}/Configuration/Sites/{self.sites[k(site)].name}"

    def site_dn(self, site: str) -> str:
        return f"CN={self.sites[k(site)].name},CN=Sites,CN=Configuration,{self.domain_dn}"

    def array_dn(self, array: CasArray) -> str:
        return (
            f"CN={array.name},CN=Arrays,CN={ADMIN_GROUP},CN=Administrative Groups,"
            f"CN={self.org_name},CN=Microsoft Exchange,CN=Services,CN=Configuration,"
            f"{self.domain_dn}"
        )


    def find_site(self, identity: str) -> AdSite:
        """AdSiteIdParameter: a site name, DN or GUID."""
        guid = _as_guid(identity)
        for site in self.sites.values():
            if (
                k(site.name) == k(identity)
                or k(self.site_dn(site.name)) == k(identity)
                or (guid is not None and site.guid == guid)
            ):
                return site
        raise err.ObjectNotFound(identity, self.domain_controller)

    def find_array(self, identity: str) -> CasArray:
        """ClientAccessArrayIdParameter: FQDN, DN, ExchangeLegacyDN, GUID, or a space-free Name."""
        text = identity.strip()
        guid = _as_guid(text)
        if guid is not None and guid in self.arrays:
            return self.arrays[guid]
        if text.lower().startswith("cn="):
            matches = [a for a in self.arrays.values() if k(self.array_dn(a)) == k(text)]
        elif text.lower().startswith("/o="):
            matches = [a for a in self.arrays.values() if k(a.legacy_dn) == k(text)]
        elif re.search(r"\s", text) or not text:
            raise err.ParameterBindingError(
                err.CANNOT_CONVERT.format(
                    name="Identity",
                    value=identity,
                    type="Microsoft.Exchange.Configuration.Tasks.ClientAccessArrayIdParameter",
                    error=err.INVALID_IDENTITY.format(value=identity).replace("\r\n", " "),
                ),
                target=identity,
            )
        else:
            matches = [a for a in self.arrays.values() if k(a.fqdn) == k(text)]
            if not matches:
                matches = [a for a in self.arrays.values() if k(a.name) == k(text)]
        return self._one(matches, identity)

    def find_server(self, identity: str, *, cas_only: bool = False) -> Server:
        """ServerIdParameter / ClientAccessServerIdParameter: a server name or FQDN."""
        key = k(identity)
        server = self.servers.get(key)
        if server is None:
            server = next((s for s in self.servers.values() if k(s.fqdn) == key), None)
        if server is None or (cas_only and not server.is_cas):
            raise err.ObjectNotFound(identity, self.domain_controller)
        return server

    def find_database(self, identity: str) -> MailboxDatabase:
        db = self.databases.get(k(identity))
        if db is None:
            raise err.ObjectNotFound(identity, self.domain_controller)
        return db

    def resolve_rpc_target(self, identity: str) -> RpcPointer:
        """ClientAccessServerOrArrayIdParameter: an array (FQDN, Name...) or a CAS server."""
        try:
            array = self.find_array(identity)
            return RpcPointer(kind="array", target=array.guid, shown=array.fqdn)
        except (err.ObjectNotFound, err.ParameterBindingError):
            pass
        server = self.find_server(identity)
        if not server.is_cas:
            raise err.RuleViolation(err.NOT_A_CAS.format(server=server.name), target=identity)
        return RpcPointer(kind="server", target=server.name, shown=server.fqdn)

    def _one(self, matches: list[CasArray], identity: str) -> CasArray:
        if not matches:
            raise err.ObjectNotFound(identity, self.domain_controller)
        if len(matches) > 1:
            raise err.ObjectAmbiguous(identity)
        return matches[0]

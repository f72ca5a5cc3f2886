"""CAS servers: where each is declared against where AD places it, and its Autodiscover SCP.

A declared server Exchange does not know (or that lacks the Client Access role), or one AD
places in another site, withholds its site's changes; managed Autodiscover settings that differ
become :class:`~casdesired.changes.types.AutodiscoverChange`.

Exchange 2010/2013 coexistence is a normal migration state, not a site-wide stop: a 2013+ server
is never a member of a 2010 CAS array (Exchange leaves it out of Members), so one the YAML
declares is an error about that server alone (its own changes are withheld), and an undeclared
one is only noted (shared/domain/exchange2010-field.md §7).
"""

from __future__ import annotations

from typing import Any

from casdesired import model
from casdesired.changes.compare import compare
from casdesired.changes.context import DiffContext
from casdesired.changes.types import AutodiscoverChange
from casdesired.changes.unmanaged import Unmanaged
from casdesired.findings import Finding, Scope, Severity


def diff_servers(d: DiffContext, site: model.Site) -> None:
    desired = {srv.key: _server_record(srv) for srv in site.servers}
    live_here = {
        k: srv for k, srv in d.live.servers.items() if model.key(srv.site) == site.key
    }
    live_records = {
        srv.key: _server_record(srv, like=d.desired_servers.get(srv.key))
        for srv in (d.live.servers.get(k) for k in desired)
        if srv is not None
    }
    comparison = compare(desired, live_records)
    for srv in site.servers:
        twin = d.live.servers.get(srv.key)  # the declared server as read
        if twin is None:
            roles = d.inp.exchange_roles.get(srv.key)
            if roles is not None:
                message = (
                    f"server {srv.name} is declared as a CAS server in site {site.name}, but "
                    f"it does not have the Client Access role (Get-ExchangeServer shows "
                    f"ServerRole: {roles or 'none'}); install the role or remove it from "
                    "the YAML"
                )
            else:
                message = (
                    f"CAS server {srv.name} is declared in site {site.name} but Exchange "
                    "does not know it (Get-ExchangeServer); install it or remove it from the "
                    "YAML"
                )
            d.finding(Severity.ERROR, "server-missing", message, site.name, srv.source)
            continue
        if model.key(twin.site) != site.key:
            d.finding(
                Severity.ERROR,
                "server-in-other-site",
                f"CAS server {srv.name} is declared in site {site.name} but Active Directory "
                f"places it in site {twin.site}. No Exchange cmdlet can move a server: in AD "
                f"Sites and Services, associate the subnet of {srv.fqdn}'s IP address with "
                f"site {site.name} (Sites > Subnets), or declare the server in site "
                f"{twin.site}. Changes to site {site.name} are withheld until then.",
                site.name,
                srv.source,
            )
            continue
        fields_ = comparison.changed.get(srv.key, frozenset())
        if fields_:
            d.changes.append(
                AutodiscoverChange(
                    site=site.name,
                    server=twin.name,
                    before_internal_uri=twin.autodiscover_internal_uri,
                    internal_uri=(
                        srv.autodiscover_internal_uri if "internal_uri" in fields_ else None
                    ),
                    before_site_scope=twin.autodiscover_site_scope,
                    site_scope=srv.autodiscover_site_scope if "site_scope" in fields_ else None,
                )
            )
    for k, present in live_here.items():  # every server read in this site
        major = model.exchange_major(present.version)
        if major is not None and major >= 15:
            declared = next((srv for srv in site.servers if srv.key == k), None)
            _coexisting(d, site, present, declared)
        if k not in d.desired_servers:  # declared in another site: a finding there
            d.unmanaged.append(
                Unmanaged("server", present.name, site.name, "CAS server not declared")
            )


def _coexisting(
    d: DiffContext, site: model.Site, server: model.CasServer, declared: model.CasServer | None
) -> None:
    """An Exchange 2013+ server in a 2010 site: an error about it when the YAML declares it,
    a note otherwise. Either way the rest of the site plans and applies."""
    if declared is None:
        d.finding(
            Severity.WARNING,
            "exchange-2013-coexistence",
            f"server {server.name} in site {site.name} runs Exchange 2013 or later "
            f"({server.version}): it is not a member of the site's CAS array and casdesired "
            "leaves it alone; keep the array FQDN on the Exchange 2010 VIP until the last 2010 "
            "mailbox has moved",
            site.name,
        )
        return
    d.findings.append(
        Finding(
            Severity.ERROR,
            "exchange-2013-declared",
            f"server {server.name} is declared as a CAS server of site {site.name}, but it runs "
            f"Exchange 2013 or later ({server.version}): it is never a member of an Exchange "
            "2010 CAS array, and casdesired manages Exchange 2010 only; remove it from the "
            f"site's servers (and NLB members). Its changes are withheld; the rest of site "
            f"{site.name} goes ahead",
            site.name,
            declared.source,
            name=server.name,
            scope=Scope.OBJECT,
        )
    )


def _server_record(srv: model.CasServer, like: model.CasServer | None = None) -> dict[str, Any]:
    """The managed Autodiscover settings of a server, normalised for comparison.

    Only settings the desired side manages (not None) take part: ``like`` is the desired twin
    whose choice decides which live settings to compare.
    """
    ref = like or srv
    record: dict[str, Any] = {}
    if ref.autodiscover_internal_uri is not None:
        record["internal_uri"] = (srv.autodiscover_internal_uri or "").lower()
    if ref.autodiscover_site_scope is not None:
        record["site_scope"] = sorted(model.key(s) for s in srv.autodiscover_site_scope or ())
    return record

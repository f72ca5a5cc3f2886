"""DNS as one more source of a plan's changes and findings.

The diff calls a :class:`DnsSource` with the Exchange changes it proposes, before anything is
withheld (octoDNS's ``_extra_changes``), so every safety check later sees one list. It

* asks the organisation's resolvers about every array and CAS server in scope
  (:func:`casdesired.dns.desired.check_desired`): findings with ``source: dns``, located at
  the declaration, carrying their site;
* with ``dns.management``, plans each array's A record against the zone's primary
  (:func:`casdesired.dns.records.plan_records`), and deletes a renamed array's old name when it
  still points at exactly this array's VIP (otherwise it keeps it, with a warning saying why).

It only reports what it found. What a DNS error means for apply (it blocks apply when the plan
points databases at the name and no record change of the plan fixes it) is the plan's decision
(``casdesired.plan.thresholds``), phrased for the user by apply's gate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from casdesired import model
from casdesired.changes.changeset import Found
from casdesired.changes.types import ArrayUpdate, Change
from casdesired.desired.config import DesiredState
from casdesired.dns.check import expectations_from_sites
from casdesired.dns.desired import DEFAULT_TIMEOUT, check_desired, in_scope, resolvers_for
from casdesired.dns.lookup import sorted_addresses, to_dns_name
from casdesired.dns.records import RecordChange, plan_records, primary_lookup, record_change
from casdesired.dns.tsig import TsigConfig
from casdesired.findings import Finding, Severity, Source

RULE_OLD_NAME_KEPT = "dns-old-name-kept"


@dataclass(frozen=True)
class DnsSource:
    """The DNS records and checks of the sites a plan covers."""

    desired: DesiredState
    sites: Sequence[str] | None = None
    progress: Callable[[str], None] | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def checked_sites(self) -> tuple[str, ...]:
        """The sites whose names a call asks the resolvers about: every site in scope when the
        organisation configures resolvers, none otherwise (the plan records it, so "checked,
        nothing found" reads differently from "not checked")."""
        dns = self.desired.organisation.dns
        if not dns.resolvers and not dns.external_resolvers:
            return ()
        return tuple(site.name for site in in_scope(self.desired, self.sites))

    def __call__(self, proposed: Sequence[Change]) -> Found:
        """Record changes and DNS findings, given the Exchange changes the diff proposes
        (withheld or not: a renamed array's old name is planned like its new one)."""
        if self.progress:
            self.progress("checking DNS")
        renames = [c for c in proposed if isinstance(c, ArrayUpdate)]
        changes, notes = self.record_changes(renames)
        with resolvers_for(self.desired.organisation) as resolvers:
            checked = check_desired(
                self.desired, resolvers, sites=self.sites, timeout=self.timeout
            )
        return Found(tuple(changes), (*checked, *notes))

    def record_changes(
        self, renames: Sequence[ArrayUpdate]
    ) -> tuple[list[RecordChange], list[Finding]]:
        """The A-record changes of the arrays in scope; none without ``dns.management``."""
        tsig = self.desired.organisation.dns.management
        if tsig is None:
            return [], []
        live = primary_lookup(tsig)
        expected = expectations_from_sites(in_scope(self.desired, self.sites))
        changes = plan_records(expected, tsig=tsig, live=live)
        notes: list[Finding] = []
        old_name_deletes(self.desired, renames, tsig, live, changes, notes)
        return changes, notes


def old_name_deletes(
    desired: DesiredState,
    renames: Iterable[ArrayUpdate],
    tsig: TsigConfig,
    live: Callable[[str], set[str]],
    changes: list[RecordChange],
    notes: list[Finding],
) -> None:
    """Delete a renamed array's old A record, but only when it is provably this array's.

    The old record goes only if the primary holds exactly the array's VIP there (it is this
    array's name, nothing else uses it) and no declared array takes the old name. Anything else
    — another address, several, a name outside the managed zone — is left as is and noted.
    Deleting it takes the old endpoint offline, which is what makes Outlook 2007/2010 profiles
    still naming it repair themselves through Autodiscover.
    """
    declared = {model.key(s.array.fqdn) for s in desired.sites if s.array is not None}
    sites = {s.key: s for s in desired.sites}
    for rename in renames:
        if not rename.fqdn_changes or model.key(rename.live_fqdn) in declared:
            continue
        site = sites.get(model.key(rename.site))
        array = site.array if site is not None else None
        lb = array.load_balancer if array is not None else None
        if array is None or lb is None:
            continue
        old = rename.live_fqdn
        zone = tsig.zone_name
        if not to_dns_name(old).is_subdomain(zone):
            notes.append(_kept(rename, array, f"it is outside the managed zone {tsig.zone}"))
            continue
        current = tuple(sorted_addresses(live(old)))
        if not current:
            continue
        if current != (lb.vip,):
            shown = ", ".join(current)
            notes.append(
                _kept(rename, array, f"it resolves to {shown}, not this array's VIP {lb.vip}")
            )
            continue
        changes.append(
            record_change(
                "delete", old.rstrip(".").lower(), zone.to_text(omit_final_dot=True), current,
                (), tsig.ttl, management=tsig, site=rename.site,
            )
        )


def _kept(rename: ArrayUpdate, array: model.CasArray, why: str) -> Finding:
    return Finding(
        Severity.WARNING,
        RULE_OLD_NAME_KEPT,
        f"array {rename.live_fqdn} is renamed to {rename.fqdn}; its old DNS name is left as "
        f"is because {why} (remove it yourself once nothing uses it)",
        site=rename.site,
        location=array.source,
        name=rename.live_fqdn,
        source=Source.DNS,
    )


"""DNS in the plan: findings apart from the changes, and (with ``dns.management``) record changes.

:func:`attach_dns` is called once a plan's Exchange changes are known (``casdesired plan`` and
apply's own planning). It

* asks the organisation's resolvers about every array and CAS server in scope
  (:mod:`casdesired.dns.desired`) and records the findings as :class:`DnsNote`; an error about an
  array the plan rebinds databases to, which no record change of the plan fixes, is marked
  ``blocks_apply`` (apply refuses unless ``--force``: :func:`gate_refusals`);
* with management configured, plans each array's A record against the zone's primary
  (:func:`casdesired.dns.plan_records`) as typed :class:`DnsRecordChange` changes, ordered with
  the other changes (creates and updates before an array takes the name and before the
  bindings, deletes after the array's), and deletes a renamed array's old name when it still
  points at exactly this array's VIP (:func:`old_name_deletes`; otherwise noted and kept).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from casdesired import model
from casdesired.changes.diff import order_changes
from casdesired.changes.types import (
    ArrayUpdate,
    BindingChange,
    Change,
    DnsRecordChange,
    DnsRecordCreate,
    DnsRecordDelete,
    DnsRecordUpdate,
)
from casdesired.desired.config import DesiredState
from casdesired.diagnostics import Severity
from casdesired.dns.check import DnsFinding, expectations_from_sites
from casdesired.dns.desired import DEFAULT_TIMEOUT, check_desired, in_scope, resolvers_for, site_of
from casdesired.dns.lookup import sorted_addresses, to_dns_name
from casdesired.dns.records import RecordChange, plan_records, primary_lookup
from casdesired.dns.tsig import TsigConfig
from casdesired.plan.dnsnote import DnsNote
from casdesired.plan.plan import Plan

_RECORD_TYPES: dict[str, type[DnsRecordChange]] = {
    "create": DnsRecordCreate,
    "update": DnsRecordUpdate,
    "delete": DnsRecordDelete,
}


def to_change(record: RecordChange, site: str, tsig: TsigConfig) -> DnsRecordChange:
    """A planned :class:`RecordChange` as a typed plan change carrying its management settings."""
    return _RECORD_TYPES[record.action](
        site=site,
        name=record.name,
        zone=record.zone,
        before_addresses=record.before,
        after_addresses=record.after,
        ttl=record.ttl,
        server=tsig.server,
        key_name=tsig.key_name,
        algorithm=tsig.algorithm,
        secret_env=tsig.secret_env,
        unsigned=tsig.unsigned,
    )


def to_record(change: DnsRecordChange) -> tuple[RecordChange, TsigConfig]:
    """What :func:`casdesired.dns.apply_record_change` takes, rebuilt from a plan change."""
    tsig = TsigConfig(
        key_name=change.key_name,
        algorithm=change.algorithm,
        secret_env=change.secret_env,
        server=change.server,
        zone=change.zone,
        ttl=change.ttl,
        unsigned=change.unsigned,
    )
    record = RecordChange(
        change.action.value,
        change.name,
        change.zone,
        change.before_addresses,
        change.after_addresses,
        change.ttl,
    )
    return record, tsig


def inverse(change: DnsRecordChange) -> DnsRecordChange:
    """The change that undoes ``change`` (for the rollback plan)."""
    record, tsig = to_record(change)
    return to_change(record.inverse(), change.site, tsig)


@dataclass
class PlannedRecords:
    """The A-record changes of a plan, and the notes about old names it leaves alone."""

    changes: list[DnsRecordChange] = field(default_factory=list)
    notes: list[DnsNote] = field(default_factory=list)


def record_changes(
    desired: DesiredState,
    sites: Iterable[str] | None = None,
    renames: Iterable[ArrayUpdate] = (),
) -> PlannedRecords:
    """The A-record changes of the arrays in scope; none without ``dns.management``.

    ``renames`` are the plan's array updates: the old name of an array whose FQDN changes is
    deleted after the rename (:func:`old_name_deletes`).
    """
    tsig = desired.organisation.dns.management
    if tsig is None:
        return PlannedRecords()
    scope = in_scope(desired, sites)
    site_by_fqdn = {
        model.key(s.array.fqdn): s.name for s in scope if s.array is not None
    }
    expected = expectations_from_sites(scope)
    live = primary_lookup(tsig)
    planned = plan_records(expected, tsig=tsig, live=live)
    result = PlannedRecords(
        [to_change(r, site_by_fqdn.get(model.key(r.name), ""), tsig) for r in planned]
    )
    old_name_deletes(desired, renames, tsig, live, result)
    return result


def old_name_deletes(
    desired: DesiredState,
    renames: Iterable[ArrayUpdate],
    tsig: TsigConfig,
    live: Callable[[str], set[str]],
    into: PlannedRecords,
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
        if lb is None:
            continue
        old = rename.live_fqdn
        zone = tsig.zone_name
        if not to_dns_name(old).is_subdomain(zone):
            into.notes.append(_kept(rename, array, f"it is outside the managed zone {tsig.zone}"))
            continue
        current = tuple(sorted_addresses(live(old)))
        if not current:
            continue
        if current != (lb.vip,):
            shown = ", ".join(current)
            into.notes.append(
                _kept(rename, array, f"it resolves to {shown}, not this array's VIP {lb.vip}")
            )
            continue
        record = RecordChange(
            "delete", old.rstrip(".").lower(), zone.to_text(omit_final_dot=True), current, (),
            tsig.ttl,
        )
        into.changes.append(to_change(record, rename.site, tsig))


def _kept(rename: ArrayUpdate, array: model.CasArray | None, why: str) -> DnsNote:
    return DnsNote(
        severity=Severity.WARNING,
        rule="dns-old-name-kept",
        name=rename.live_fqdn,
        message=(
            f"array {rename.live_fqdn} is renamed to {rename.fqdn}; its old DNS name is left as "
            f"is because {why} (remove it yourself once nothing uses it)"
        ),
        site=rename.site,
        location=array.source if array is not None else None,
    )


def fixes(changes: Iterable[Change]) -> set[str]:
    """Names a create or update of the plan sets right before the bindings run."""
    return {
        model.key(c.name)
        for c in changes
        if isinstance(c, (DnsRecordCreate, DnsRecordUpdate))
    }


def rebound_arrays(changes: Iterable[Change]) -> set[str]:
    """Array FQDNs (keys) the plan points databases at.

    Binding changes name their target; a new FQDN for an array that databases use moves those
    databases too, at once (their RpcClientAccessServer follows the array object), so the new
    name must resolve to the VIP just the same.
    """
    names: set[str] = set()
    for c in changes:
        if isinstance(c, BindingChange):
            names.add(model.key(c.target))
        elif isinstance(c, ArrayUpdate) and c.fqdn_changes and c.bound_databases:
            names.add(model.key(c.fqdn))
    return names


def notes(
    findings: Iterable[DnsFinding], desired: DesiredState, changes: list[Change]
) -> list[DnsNote]:
    """The findings as plan notes, marking which block apply and which the plan fixes."""
    fixed, rebound = fixes(changes), rebound_arrays(changes)
    result = []
    for finding in findings:
        name = model.key(finding.name)
        is_error = finding.severity == "error"
        result.append(
            DnsNote(
                severity=Severity(finding.severity),
                rule=finding.rule,
                name=finding.name,
                message=finding.message,
                site=site_of(finding, desired),
                location=finding.source,
                blocks_apply=is_error and name in rebound and name not in fixed,
                fixed_by_plan=name in fixed,
            )
        )
    return result


def attach_dns(
    plan: Plan,
    desired: DesiredState,
    *,
    sites: Iterable[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Plan:
    """Add the DNS record changes and the DNS notes to ``plan`` (in place; also returned)."""
    scope = list(sites) if sites is not None else None
    renames = [c for c in (*plan.changes, *plan.withheld) if isinstance(c, ArrayUpdate)]
    planned = record_changes(desired, scope, renames)
    records: list[Change] = list(planned.changes)
    blocked = {model.key(f.site) for f in plan.findings if f.blocking and f.site}
    everything_blocked = any(f.blocking and f.site is None for f in plan.findings)
    held = [c for c in records if everything_blocked or model.key(c.site) in blocked]
    plan.changes = order_changes([*plan.changes, *(c for c in records if c not in held)])
    plan.withheld = order_changes([*plan.withheld, *held])
    with resolvers_for(desired.organisation) as resolvers:
        findings = check_desired(desired, resolvers, sites=scope, timeout=timeout)
    plan.dns = [*notes(findings, desired, plan.changes), *planned.notes]
    return plan

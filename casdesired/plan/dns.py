"""DNS in the plan: findings apart from the changes, and (with ``dns.management``) record changes.

:func:`attach_dns` is called once a plan's Exchange changes are known (``casdesired plan`` and
apply's own planning). It

* asks the organisation's resolvers about every array and CAS server in scope
  (:mod:`casdesired.dns.desired`) and records the findings as :class:`DnsNote`; an error about an
  array the plan rebinds databases to, which no record change of the plan fixes, is marked
  ``blocks_apply`` (apply refuses unless ``--force``: :func:`gate_refusals`);
* with management configured, plans each array's A record against the zone's primary
  (:func:`casdesired.dns.plan_records`) as typed :class:`DnsRecordChange` changes, ordered with
  the other changes (creates and updates before the bindings, deletes after the array's).
"""

from __future__ import annotations

from collections.abc import Iterable

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


def record_changes(
    desired: DesiredState, sites: Iterable[str] | None = None
) -> list[DnsRecordChange]:
    """The A-record changes of the arrays in scope; none without ``dns.management``."""
    tsig = desired.organisation.dns.management
    if tsig is None:
        return []
    scope = in_scope(desired, sites)
    site_by_fqdn = {
        model.key(s.array.fqdn): s.name for s in scope if s.array is not None
    }
    expected = expectations_from_sites(scope)
    planned = plan_records(expected, tsig=tsig, live=primary_lookup(tsig))
    return [to_change(r, site_by_fqdn.get(model.key(r.name), ""), tsig) for r in planned]


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
    records: list[Change] = list(record_changes(desired, scope))
    blocked = {model.key(f.site) for f in plan.findings if f.blocking and f.site}
    everything_blocked = any(f.blocking and f.site is None for f in plan.findings)
    held = [c for c in records if everything_blocked or model.key(c.site) in blocked]
    plan.changes = order_changes([*plan.changes, *(c for c in records if c not in held)])
    plan.withheld = order_changes([*plan.withheld, *held])
    with resolvers_for(desired.organisation) as resolvers:
        findings = check_desired(desired, resolvers, sites=scope, timeout=timeout)
    plan.dns = notes(findings, desired, plan.changes)
    return plan

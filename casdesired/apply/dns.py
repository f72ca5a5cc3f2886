"""DNS in apply, through apply's hooks: the pre-write gate and the record-change executor.

* :func:`check_dns_gate` (a :data:`casdesired.apply.safety.PRE_WRITE_CHECKS` entry): before the
  first write, every array the plan points databases at must resolve, through every internal
  resolver, to exactly its VIP — asked now, not at plan time — unless the plan itself creates or
  updates that array's A record (that change runs first and is verified). ``--force`` overrides
  (the refusal is ``overridable``; :func:`casdesired.apply.safety.run_checks` drops it).
  A saved plan's record changes must also target the zone and server ``dns.management`` names.
* :class:`DnsRecordExecutor` (an :data:`casdesired.apply.execute.EXTRA_EXECUTORS` entry) sends a
  :class:`~casdesired.changes.types.DnsRecordChange` as an RFC 2136 update, its secret read from
  the environment variable the change names, and verifies it through the zone's primary.

:func:`register` installs both (once); ``casdesired.apply.run`` calls it.
"""

from __future__ import annotations

from collections.abc import Mapping

from casdesired import model
from casdesired.apply import execute, safety
from casdesired.changes.types import Change, DnsRecordChange
from casdesired.dns.check import check_arrays, expectations_from_sites, require_resolution
from casdesired.dns.desired import resolvers_for
from casdesired.dns.endpoints import parse_endpoint
from casdesired.dns.errors import DnsError
from casdesired.dns.update import apply_record_change
from casdesired.errors import PlanRefused
from casdesired.plan.dns import fixes, rebound_arrays, to_record


def _same_server(a: str, b: str) -> bool:
    try:
        return parse_endpoint(a) == parse_endpoint(b)
    except DnsError:
        return model.key(a) == model.key(b)


def _management_refusals(ctx: safety.SafetyContext) -> list[safety.Refusal]:
    """A plan's record changes must go where the organisation file says DNS is managed."""
    desired = ctx.desired
    if desired is None:
        return []
    tsig = desired.organisation.dns.management
    refusals = []
    for change in ctx.plan.changes:
        if not isinstance(change, DnsRecordChange):
            continue
        if tsig is None:
            refusals.append(safety.Refusal(
                f"the plan changes DNS record {change.name}, but the organisation file no "
                "longer configures dns.management; make a new plan"
            ))
        elif model.key(change.zone) != model.key(tsig.zone) or not _same_server(
            change.server, tsig.server
        ):
            refusals.append(safety.Refusal(
                f"the plan changes DNS record {change.name} in zone {change.zone} at "
                f"{change.server}, but dns.management names zone {tsig.zone} at {tsig.server}; "
                "make a new plan"
            ))
    return refusals


def check_dns_gate(ctx: safety.SafetyContext) -> list[safety.Refusal]:
    """Refuse to point databases at an array whose FQDN does not resolve to its VIP."""
    refusals = _management_refusals(ctx)
    desired = ctx.desired
    if desired is None:
        return refusals
    pending = rebound_arrays(ctx.plan.changes) - fixes(ctx.plan.changes)
    expected = [e for e in expectations_from_sites(desired.sites) if model.key(e.fqdn) in pending]
    if not expected or not desired.organisation.dns.resolvers:
        return refusals
    with resolvers_for(desired.organisation) as resolvers:
        findings = check_arrays(expected, resolvers=resolvers.internal)
    try:
        require_resolution(findings)
    except PlanRefused as exc:  # --force overrides it (safety.run_checks decides)
        refusals.append(safety.Refusal(str(exc), overridable=True))
    return refusals


class DnsRecordExecutor:
    """Carries out DNS record changes (not the agent's): RFC 2136 update, then verification."""

    error_label = "DNS server said"

    def handles(self, change: Change) -> bool:
        return isinstance(change, DnsRecordChange)

    def execute(self, change: Change, environ: Mapping[str, str]) -> None:
        assert isinstance(change, DnsRecordChange)
        record, tsig = to_record(change)
        apply_record_change(record, tsig=tsig, environ=environ)


def register() -> None:
    """Install the gate and the executor in apply's hooks (idempotent)."""
    if check_dns_gate not in safety.PRE_WRITE_CHECKS:
        safety.PRE_WRITE_CHECKS.append(check_dns_gate)
    if not any(isinstance(e, DnsRecordExecutor) for e in execute.EXTRA_EXECUTORS):
        execute.EXTRA_EXECUTORS.append(DnsRecordExecutor())

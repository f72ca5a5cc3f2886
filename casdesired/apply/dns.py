"""DNS in apply: the pre-write gate and the record-change executor.

``casdesired.apply.run`` lists both where its workflow runs:

* :func:`check_dns_gate` (a pre-write check): before the first write, every array the plan
  points databases at must resolve, through every internal resolver, to exactly its VIP — asked
  now, not at plan time — unless the plan itself creates or updates that array's A record (that
  change runs first and is verified). ``--force`` overrides (the refusal is ``overridable``;
  :func:`casdesired.apply.safety.run_checks` drops it). It refuses with the reason the plan
  showed under its safety decisions (:func:`casdesired.plan.thresholds.dns_gate_reason`).
  :func:`check_dns_management`: a saved plan's record changes must target the zone and server
  ``dns.management`` names.
* :class:`DnsRecordExecutor` (an executor of :func:`casdesired.apply.execute.execute`) sends a
  :class:`~casdesired.dns.records.RecordChange` as an RFC 2136 update, its secret read from the
  environment variable the change names, and verifies it through the zone's primary.
"""

from __future__ import annotations

from collections.abc import Mapping

from casdesired import model
from casdesired.apply import safety
from casdesired.changes.types import Change
from casdesired.dns.check import check_arrays, expectations_from_sites
from casdesired.dns.desired import resolvers_for
from casdesired.dns.endpoints import parse_endpoint
from casdesired.dns.errors import DnsError
from casdesired.dns.records import RecordChange
from casdesired.dns.update import apply_record_change
from casdesired.plan.thresholds import dns_blocking, dns_gate_reason, pending_names


def _same_server(a: str, b: str) -> bool:
    try:
        return parse_endpoint(a) == parse_endpoint(b)
    except DnsError:
        return model.key(a) == model.key(b)


def check_dns_management(ctx: safety.SafetyContext) -> list[safety.Refusal]:
    """A plan's record changes must go where the organisation file says DNS is managed."""
    desired = ctx.desired
    if desired is None:
        return []
    tsig = desired.organisation.dns.management
    refusals = []
    for change in ctx.plan.changes:
        if not isinstance(change, RecordChange):
            continue
        if tsig is None:
            refusals.append(safety.Refusal(
                f"the plan changes DNS record {change.name}, but the organisation file no "
                "longer configures dns.management; make a new plan"
            ))
        elif model.key(change.zone) != model.key(tsig.zone) or not _same_server(
            change.management.server, tsig.server
        ):
            refusals.append(safety.Refusal(
                f"the plan changes DNS record {change.name} in zone {change.zone} at "
                f"{change.management.server}, but dns.management names zone {tsig.zone} at "
                f"{tsig.server}; make a new plan"
            ))
    return refusals


def check_dns_gate(ctx: safety.SafetyContext) -> list[safety.Refusal]:
    """Refuse to point databases at an array whose FQDN does not resolve to its VIP now."""
    desired = ctx.desired
    if desired is None:
        return []
    pending = pending_names(ctx.plan.changes)
    expected = [e for e in expectations_from_sites(desired.sites) if model.key(e.fqdn) in pending]
    if not expected or not desired.organisation.dns.resolvers:
        return []
    with resolvers_for(desired.organisation) as resolvers:
        findings = check_arrays(expected, resolvers=resolvers.internal)
    blocking = dns_blocking(findings, ctx.plan.changes)
    if not blocking:
        return []
    return [safety.Refusal(dns_gate_reason(blocking), overridable=True)]


class DnsRecordExecutor:
    """Carries out DNS record changes (not the agent's): RFC 2136 update, then verification."""

    error_label = "DNS server said"

    def handles(self, change: Change) -> bool:
        return isinstance(change, RecordChange)

    def execute(self, change: Change, environ: Mapping[str, str]) -> None:
        assert isinstance(change, RecordChange)
        apply_record_change(change, environ=environ)

"""What a plan needs ``--force`` for: the organisation's thresholds, deletes, and the DNS gate.

One implementation for both sides: ``casdesired plan`` shows the reasons under its safety
decisions (so a reviewer sees what apply will refuse), and apply's pre-write checks refuse with
the same reasons unless ``--force`` (``casdesired.apply.safety`` for the thresholds,
``casdesired.apply.dns`` for the DNS gate, asked again at apply time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from casdesired import model
from casdesired.changes.types import Action, ArrayUpdate, BindingChange, Change
from casdesired.desired.config import Policy
from casdesired.dns.records import RecordCreate, RecordUpdate
from casdesired.findings import Finding, Severity, Source

DELETES_LISTED = 5
"""Deletes named one by one in the reason before the rest are only counted."""


def needs_force(
    changes: Sequence[Change],
    total_databases: int,
    policy: Policy,
    findings: Iterable[Finding] = (),
) -> list[str]:
    """Why applying ``changes`` needs ``--force`` (empty: it does not).

    * more than ``max_rebind_percent`` of the organisation's databases rebound, once it has at
      least ``min_databases_for_threshold`` (octoDNS's MAX_SAFE_UPDATE_PCENT idea);
    * any delete (array, NLB node, DNS record): deletes are never routine;
    * the DNS gate: a DNS error about a name the plan points databases at
      (:func:`dns_blocking`, from ``findings``).
    """
    reasons = []
    rebinds = sum(1 for c in changes if isinstance(c, BindingChange))
    if total_databases >= policy.min_databases_for_threshold and total_databases > 0:
        percent = 100.0 * rebinds / total_databases
        if percent > policy.max_rebind_percent:
            reasons.append(
                f"threshold max_rebind_percent: the plan rebinds {rebinds} of {total_databases} "
                f"databases ({percent:.1f}%), above the policy's {policy.max_rebind_percent:g}% "
                f"(applies from {policy.min_databases_for_threshold} databases)"
            )
    deletes = [c for c in changes if c.action is Action.DELETE]
    if deletes:
        shown = ", ".join(c.describe() for c in deletes[:DELETES_LISTED])
        more = f" and {len(deletes) - DELETES_LISTED} more" if len(deletes) > DELETES_LISTED else ""
        reasons.append(
            f"deletes need --force: the plan deletes {len(deletes)} object(s) ({shown}{more})"
        )
    blocking = dns_blocking(findings, changes)
    if blocking:
        reasons.append(dns_gate_reason(blocking))
    return reasons


def dns_gate_reason(blocking: Sequence[Finding]) -> str:
    """The DNS gate's reason, as the plan shows it and apply refuses with it."""
    listed = "; ".join(f.message for f in blocking)
    return (
        "DNS gate: refusing to point databases at arrays whose names do not resolve to their "
        f"VIP (fix DNS first): {listed}"
    )


def fixed_names(changes: Iterable[Change]) -> set[str]:
    """Names (keys) a record create or update of the plan sets right before the bindings run."""
    return {model.key(c.name) for c in changes if isinstance(c, (RecordCreate, RecordUpdate))}


def rebound_names(changes: Iterable[Change]) -> set[str]:
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


def pending_names(changes: Sequence[Change]) -> set[str]:
    """Names the plan points databases at that no record change of the plan sets first: what
    the DNS gate checks."""
    return rebound_names(changes) - fixed_names(changes)


def dns_blocking(findings: Iterable[Finding], changes: Sequence[Change]) -> list[Finding]:
    """DNS errors about names the plan points databases at, which it does not fix itself."""
    pending = pending_names(changes)
    return [
        f
        for f in findings
        if f.source is Source.DNS
        and f.severity is Severity.ERROR
        and f.name is not None
        and model.key(f.name) in pending
    ]

"""The rollback plan written with every apply: the changes that restore what it changed.

It is an ordinary :class:`~casdesired.plan.plan.Plan` (reviewable with the same renderers,
appliable with ``casdesired apply ROLLBACKFILE``), computed from the changes that were applied
and the live state read before them (the NLB interfaces a removed node needs to come back).
Its per-object fingerprints are those of the state the apply left, so it is refused as stale if
anything moves after the apply. Without that state (the verification read failed) there is
nothing honest to pin it to, so no rollback plan is made (see :func:`rollback_plan`'s caller).
Only changes known to be applied are undone: a change whose outcome is unknown (the connection
broke while it ran) is left out rather than "undone" as if it had happened.
"""

from __future__ import annotations

from pathlib import Path

from casdesired import model
from casdesired.apply.execute import Execution, Status
from casdesired.changes.changeset import ChangeSet, order_changes
from casdesired.changes.types import (
    ArrayCreate,
    ArrayDelete,
    ArrayUpdate,
    AutodiscoverChange,
    BindingChange,
    Change,
    NlbNodeAdd,
    NlbNodeRemove,
)
from casdesired.desired.config import Policy
from casdesired.dns.records import RecordChange
from casdesired.live.state import LiveState
from casdesired.plan.build import assemble
from casdesired.plan.plan import ROLLBACK_DIGEST, Plan


def inverse(change: Change, before: LiveState) -> tuple[Change | None, str | None]:
    """The change that undoes ``change``, or None with the reason it cannot be undone."""
    if isinstance(change, ArrayCreate):
        return ArrayDelete(site=change.site, fqdn=change.fqdn, name=change.name), None
    if isinstance(change, ArrayDelete):
        return ArrayCreate(site=change.site, fqdn=change.fqdn, name=change.name), None
    if isinstance(change, ArrayUpdate):
        # The databases that stayed on the array follow it back: the same Outlook warning.
        return ArrayUpdate(
            site=change.site,
            live_fqdn=change.fqdn,
            before_name=change.name,
            fqdn=change.live_fqdn,
            name=change.before_name,
            bound_databases=change.bound_databases,
            bound_mailboxes=change.bound_mailboxes,
        ), None
    if isinstance(change, BindingChange):
        if not change.before_target:
            return None, f"{change.database} had no RpcClientAccessServer to restore"
        return BindingChange(
            site=change.site,
            database=change.database,
            before_target=change.target,
            target=change.before_target,
            mailbox_count=change.mailbox_count,
        ), None
    if isinstance(change, NlbNodeAdd):
        return NlbNodeRemove(
            site=change.site,
            cluster_host=change.cluster_host,
            server=change.server,
            server_fqdn=change.server_fqdn,
        ), None
    if isinstance(change, NlbNodeRemove):
        cluster = before.nlb.get(model.key(change.cluster_host))
        node = cluster.node(change.server) if cluster else None
        if cluster is None or node is None or not cluster.interface or not node.interface:
            return None, f"the NLB interfaces of {change.server} were not known"
        return NlbNodeAdd(
            site=change.site,
            cluster_host=change.cluster_host,
            interface=cluster.interface,
            server=change.server,
            server_fqdn=change.server_fqdn,
            node_interface=node.interface,
        ), None
    if isinstance(change, AutodiscoverChange):
        if change.internal_uri is not None and change.before_internal_uri is None:
            return None, f"the Autodiscover URI of {change.server} was empty (cannot be emptied)"
        return AutodiscoverChange(
            site=change.site,
            server=change.server,
            before_internal_uri=change.internal_uri,
            internal_uri=change.before_internal_uri if change.internal_uri is not None else None,
            before_site_scope=change.site_scope,
            site_scope=(
                tuple(change.before_site_scope or ()) if change.site_scope is not None else None
            ),
        ), None
    if isinstance(change, RecordChange):
        return change.inverse(), None  # pinned to what the apply left
    return None, f"{change.describe()} has no automatic inverse"


def rollback_plan(
    plan: Plan, applied: list[Change], before: LiveState, after: LiveState, policy: Policy
) -> tuple[Plan, list[str]]:
    """The rollback of ``applied`` (a plan, pinned to ``after``) and what it could not restore.

    ``before`` is the state read before the apply (what a removed NLB node's interfaces were);
    ``after`` is the state the apply left, which the rollback plan depends on. It is built like
    any plan, so it shows what applying it needs ``--force`` for under ``policy``."""
    changes: list[Change] = []
    gaps: list[str] = []
    for change in applied:
        undo, why = inverse(change, before)
        if undo is not None:
            changes.append(undo)
        elif why:
            gaps.append(why)
    rollback = assemble(
        ChangeSet(changes=tuple(order_changes(changes)), sites=plan.sites),
        organisation=plan.organisation,
        endpoint=plan.endpoint,
        live=after,
        desired_digest=ROLLBACK_DIGEST.format(plan_id=plan.plan_id),
        policy=policy,
    )
    return rollback, gaps


def write_rollback(
    plan: Plan,
    result: Execution,
    before: LiveState,
    after: LiveState | None,
    path: Path,
    policy: Policy,
) -> tuple[Path | None, list[str], list[str]]:
    """Write the rollback of what ``result`` applied to ``path``, if there is an honest one.

    Returns the path written (None when none was), the notes for the report (what it leaves
    out, or why there is none) and the gaps (applied changes it cannot restore)."""
    applied = [o.change for o in result.by_status(Status.APPLIED)]
    unknown = len(result.by_status(Status.UNKNOWN))
    if not applied:
        if not unknown:
            return None, [], []
        return None, [
            f"no rollback plan: no change is known to be applied ({unknown} unknown: the "
            "connection broke while they ran); the next plan shows what happened"
        ], []
    if after is None:
        return None, [
            "no rollback plan: the state after the apply could not be read; make a plan "
            "from the previous YAML"
        ], []
    notes = []
    if unknown:
        # Undoing a change that may never have happened would "restore" a value that was never
        # replaced: leave it out, and let the next plan show reality.
        notes.append(
            f"the rollback plan leaves out {unknown} change(s) whose outcome is unknown "
            "(the connection broke while they ran); the next plan shows what happened"
        )
    rollback, gaps = rollback_plan(plan, applied, before, after, policy)
    rollback.save(path)
    return path, notes, gaps

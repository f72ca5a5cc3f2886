"""What an apply did, as data: filled in as it goes, rendered as the JSON end report.

``casdesired apply --format json`` prints :func:`document` of the record on stdout — every
change's status (applied / failed / unknown / not attempted) with the error text of who said it
(Exchange, a DNS server), why it stopped, what verification found, the rollback plan, and the
refusals or the error when it ended early, and the sites whose changes blocking findings withheld
(``withheld``) — so a pipeline can post the result.
``schemas/apply-report.schema.json`` describes the document (``format_version: 1``). Texts are
as Exchange and the YAML wrote them: JSON escapes them; whoever renders them escapes for
their own medium (the text report does, see :mod:`casdesired.apply.report`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from casdesired.apply.execute import Execution, Outcome, Status
from casdesired.apply.report import RollbackResult, review_command
from casdesired.apply.withheld import withheld_sites
from casdesired.changes.types import Change
from casdesired.plan.plan import Plan

FORMAT_VERSION = 1
"""Bumped when a member is removed, renamed or changes meaning. New optional members and new
``outcome`` values are added within a version (``withheld`` was): a consumer ignores members it
does not know and treats an outcome other than ``applied`` and ``nothing-to-apply`` as a
failure (``exit_code`` says so too)."""


@dataclass
class ApplyRecord:
    plan: Plan | None = None
    """The plan applied (or refused); None when apply ended before it had one."""
    result: Execution | None = None
    """The execution; None when nothing was executed (refused, nothing to do, cancelled)."""
    problems: list[str] = field(default_factory=list)
    """What verification found."""
    rollback: RollbackResult | None = None
    lock_kept: bool = False
    refusals: list[str] = field(default_factory=list)
    """Every reason a safety check gave, when apply refused before any change."""
    cancelled: bool = False
    """Not confirmed at the prompt, or interrupted before the first change."""
    error: str | None = None
    """The error that ended the apply, as the CLI printed it (without ``casdesired: error:``)."""
    refused: bool = False
    """``error`` is a deliberate refusal (a safety check, a busy lock, a plan applied before)."""
    exit_code: int = 0


def outcome(record: ApplyRecord) -> str:
    """One word for the pipeline: applied, nothing-to-apply, withheld, refused, cancelled,
    incomplete, error."""
    withheld = record.plan is not None and bool(withheld_sites(record.plan))
    if record.result is not None:
        if not record.result.ok or record.problems:
            return "incomplete"
        return "withheld" if withheld else "applied"
    if record.refusals or record.refused:
        return "refused"
    if record.error is not None:
        return "error"
    if record.cancelled:
        return "cancelled"
    return "withheld" if withheld else "nothing-to-apply"


def document(record: ApplyRecord) -> dict[str, Any]:
    """The JSON end report ``schemas/apply-report.schema.json`` describes."""
    plan = record.plan
    if record.result is not None:
        outcomes = list(record.result.outcomes)
    else:
        outcomes = [Outcome(c) for c in plan.changes] if plan is not None else []
    counts = {status: 0 for status in Status}
    for item in outcomes:
        counts[item.status] += 1
    rollback = record.rollback
    return {
        "format_version": FORMAT_VERSION,
        "outcome": outcome(record),
        "exit_code": record.exit_code,
        "plan": None if plan is None else {
            "plan_id": plan.plan_id,
            "organisation": plan.organisation,
            "endpoint": plan.endpoint,
            "summary": plan.summary,
        },
        "counts": {status.name.lower(): count for status, count in counts.items()},
        "changes": [_change(item) for item in outcomes],
        "stopped": record.result.stopped if record.result is not None else None,
        "verification": list(record.problems),
        "verified": record.result is not None and record.result.ok and not record.problems,
        "rollback": None if rollback is None else {
            "path": str(rollback.path) if rollback.path is not None else None,
            "review": review_command(rollback) if rollback.path is not None else None,
            "notes": list(rollback.notes),
        },
        "lock_kept": record.lock_kept,
        "refusals": list(record.refusals),
        "error": record.error,
        "withheld": [site.to_json() for site in withheld_sites(plan)] if plan else [],
    }


def _change(item: Outcome) -> dict[str, Any]:
    change: Change = item.change
    return {
        "kind": change.kind,
        "action": change.action.value,
        "site": change.site,
        "identity": change.identity,
        "description": change.describe(),
        "status": item.status.value,
        "error": item.error,
        "error_from": item.error_label.removesuffix(" said") if item.error else None,
    }

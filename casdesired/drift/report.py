"""The drift report: every drifted object with what git says, what Exchange says and who changed
it, as plain data the renderers only write (``schemas/drift.schema.json`` is its JSON).

Built from the plan (what differs: its changes, the withheld ones too, and databases with a
blank RpcClientAccessServer), the audit read and casdesired's own applies. An object whose live
value is casdesired's own apply's is listed apart, as *not applied yet* (git changed since): it
is not drift. :attr:`DriftReport.exit_code` is 2 when anything drifted (or a blocking finding
says git and Exchange disagree in a way no change fixes), else 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from casdesired import model
from casdesired.agent.protocol import JsonValue
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
from casdesired.drift.attribution import NO_OLD_VALUES, Attribution, Attributor, describe_reasons
from casdesired.drift.own import LastApplied
from casdesired.drift.sources import AuditRead
from casdesired.findings import Finding, Source
from casdesired.plan.plan import Plan

FORMAT_VERSION = 1
ORPHAN_RULE = "database-orphaned-pointer"
ORPHANED = "orphaned_pointer"


@dataclass(frozen=True)
class Window:
    """Where the audit search starts, and why there."""

    since: datetime
    source: str
    """``--since``, the last successful apply (with its plan id), or the default."""


@dataclass(frozen=True)
class DriftItem:
    """One object that does not match git."""

    kind: str
    """The plan's change kind (``binding``, ``array_update``, ...) or ``orphaned_pointer``."""
    site: str | None
    identity: str
    what: str
    """The object, for people: ``database HQ-DB01``."""
    fix: str
    """What the plan would do about it."""
    git: Mapping[str, JsonValue] | None
    """What git says (None: absent, or not managed)."""
    exchange: Mapping[str, JsonValue] | None
    """What Exchange shows now (None: absent)."""
    attribution: Attribution
    last_applied: LastApplied | None = None
    withheld: bool = False
    orphaned: bool = False
    mailboxes: int = 0


@dataclass(frozen=True)
class AuditSummary:
    """What the audit sources gave, for the report's header."""

    enabled: bool | None
    age_limit_days: float | None
    entries: int
    unreadable: int
    truncated: bool
    result_size: int
    search_error: str | None
    config_error: str | None
    plan_records: int
    records_error: str | None
    own_applies: int

    @classmethod
    def of(cls, audit: AuditRead, own_applies: int) -> AuditSummary:
        config = audit.config
        age = config.age_limit if config is not None else None
        return cls(
            enabled=config.enabled if config is not None else None,
            age_limit_days=age.total_seconds() / 86400 if age is not None else None,
            entries=len(audit.entries),
            unreadable=audit.unreadable,
            truncated=audit.truncated,
            result_size=audit.result_size,
            search_error=audit.search_error.message if audit.search_error else None,
            config_error=audit.config_error.message if audit.config_error else None,
            plan_records=len(audit.records),
            records_error=audit.records_error.message if audit.records_error else None,
            own_applies=own_applies,
        )

    def describe(self) -> str:
        """One line: what was read, or why not."""
        if self.search_error is not None:
            return f"not searched: {self.search_error}"
        state = {True: "on", False: "OFF", None: "configuration unknown"}[self.enabled]
        text = f"logging {state}; {self.entries:,} entries of the managed cmdlets read"
        if self.truncated:
            text += f" (the search's limit of {self.result_size:,}: older ones not read)"
        if self.unreadable:
            text += f"; {self.unreadable:,} unreadable"
        return text + f"; {self.own_applies:,} casdesired applies recorded"


@dataclass(frozen=True)
class DriftReport:
    organisation: str
    endpoint: str
    sites: tuple[str, ...] | None
    generated: datetime
    window: Window
    items: tuple[DriftItem, ...]
    findings: tuple[Finding, ...]
    audit: AuditSummary
    accounts: tuple[str, ...]
    notes: tuple[str, ...] = ()
    hints: tuple[str, ...] = field(default=())

    @property
    def drifted(self) -> list[DriftItem]:
        return [i for i in self.items if i.attribution.drift]

    @property
    def pending(self) -> list[DriftItem]:
        return [i for i in self.items if not i.attribution.drift]

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]

    @property
    def exit_code(self) -> int:
        return 2 if self.drifted or self.blocking else 0

    @property
    def summary(self) -> str:
        drifted = self.drifted
        unknown = sum(1 for i in drifted if i.attribution.status.value == "unknown")
        if not drifted and not self.blocking:
            text = "No drift: the organisation matches git"
            if self.pending:
                text += f" but for {len(self.pending):,} change(s) not applied yet"
            return text + "."
        parts = []
        if drifted:
            parts.append(f"{len(drifted):,} object(s) changed outside git")
            if unknown:
                parts[0] += f" ({unknown:,} by unknown hands)"
        if self.pending:
            parts.append(f"{len(self.pending):,} not applied yet")
        if self.blocking:
            parts.append(f"{len(self.blocking):,} blocking finding(s)")
        return "Drift: " + "; ".join(parts) + "."

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "organisation": {"name": self.organisation, "endpoint": self.endpoint},
            "sites": list(self.sites) if self.sites is not None else None,
            "generated": _iso(self.generated),
            "window": {"since": _iso(self.window.since), "source": self.window.source},
            "audit_log": {
                "enabled": self.audit.enabled,
                "age_limit_days": self.audit.age_limit_days,
                "entries_read": self.audit.entries,
                "unreadable": self.audit.unreadable,
                "truncated": self.audit.truncated,
                "result_size": self.audit.result_size,
                "search_error": self.audit.search_error,
                "config_error": self.audit.config_error,
                "plan_records": self.audit.plan_records,
                "plan_records_error": self.audit.records_error,
                "casdesired_applies": self.audit.own_applies,
            },
            "casdesired_accounts": list(self.accounts),
            "summary": {
                "text": self.summary,
                "drifted": len(self.drifted),
                "unknown": sum(1 for i in self.drifted if i.attribution.status.value == "unknown"),
                "not_applied_yet": len(self.pending),
                "blocking_findings": len(self.blocking),
            },
            "drift": [_item_json(i) for i in self.drifted],
            "not_applied_yet": [_item_json(i) for i in self.pending],
            "findings": [f.to_json() for f in self.findings],
            "notes": list(self.notes),
            "hints": list(self.hints),
        }


def build_report(
    plan: Plan,
    attributor: Attributor,
    *,
    window: Window,
    last_applied: Mapping[tuple[str, str], LastApplied],
    accounts: Sequence[str],
    generated: datetime,
) -> DriftReport:
    """The report for a plan made from the same read as ``attributor``'s audit read."""
    items: list[DriftItem] = []
    bound = set()
    for withheld, changes in ((False, plan.changes), (True, plan.withheld)):
        for change in changes:
            item = _item(change, attributor, last_applied, withheld)
            items.append(item)
            if isinstance(change, BindingChange):
                bound.add(model.key(change.database))
    findings = []
    for finding in plan.findings:
        if finding.source is Source.DNS:
            continue  # DNS checks are not drift (docs/dns.md); record changes are items
        if finding.rule == ORPHAN_RULE and finding.name is not None:
            if model.key(finding.name) not in bound:
                items.append(_orphan(finding, attributor))
            continue
        findings.append(finding)
    reasons = Counter(i.attribution.reason_code for i in items if i.attribution.reason_code)
    return DriftReport(
        organisation=plan.organisation,
        endpoint=plan.endpoint,
        sites=plan.sites,
        generated=generated,
        window=window,
        items=tuple(items),
        findings=tuple(findings),
        audit=AuditSummary.of(attributor.audit, len(attributor.own.applies)),
        accounts=tuple(accounts),
        notes=(NO_OLD_VALUES,) if items else (),
        hints=tuple(describe_reasons(reasons)),
    )


def _item(
    change: Change,
    attributor: Attributor,
    last_applied: Mapping[tuple[str, str], LastApplied],
    withheld: bool,
) -> DriftItem:
    orphaned = isinstance(change, BindingChange) and not change.before_target.strip()
    return DriftItem(
        kind=change.kind,
        site=change.site,
        identity=change.identity,
        what=_what(change),
        fix=change.describe(),
        git=change.after(),
        exchange=change.before(),
        attribution=attributor.change(change),
        last_applied=last_applied.get((change.kind, model.key(change.identity))),
        withheld=withheld,
        orphaned=orphaned,
        mailboxes=change.mailboxes,
    )


def _orphan(finding: Finding, attributor: Attributor) -> DriftItem:
    database = str(finding.name)
    return DriftItem(
        kind=ORPHANED,
        site=finding.site,
        identity=database,
        what=f"database {database}",
        fix="bind it to its site's array in the YAML (no site binds it)",
        git=None,
        exchange={"rpc_client_access_server": ""},
        attribution=attributor.orphan(database),
        orphaned=True,
    )


def _what(change: Change) -> str:
    if isinstance(change, BindingChange):
        return f"database {change.database}"
    if isinstance(change, (ArrayCreate, ArrayDelete)):
        return f"CAS array {change.fqdn}"
    if isinstance(change, ArrayUpdate):
        return f"CAS array {change.live_fqdn}"
    if isinstance(change, (NlbNodeAdd, NlbNodeRemove)):
        return f"NLB node {change.server} of the cluster on {change.cluster_host}"
    if isinstance(change, AutodiscoverChange):
        return f"Autodiscover of {change.server}"
    return f"{change.kind.replace('_', ' ')} {change.identity}"


def _item_json(item: DriftItem) -> dict[str, Any]:
    a = item.attribution
    entry = a.entry
    last = item.last_applied
    return {
        "kind": item.kind,
        "site": item.site,
        "identity": item.identity,
        "object": item.what,
        "fix": item.fix,
        "git": dict(item.git) if item.git is not None else None,
        "exchange": dict(item.exchange) if item.exchange is not None else None,
        "last_applied": (
            {"value": dict(last.value), "plan_id": last.plan_id, "time": _iso(last.time)}
            if last is not None else None
        ),
        "withheld": item.withheld,
        "orphaned_pointer": item.orphaned,
        "mailboxes": item.mailboxes,
        "attribution": {
            "status": a.status.value,
            "caller": entry.caller if entry is not None else None,
            "run_date": _iso(entry.run_date) if entry is not None else None,
            "cmdlet": entry.cmdlet if entry is not None else None,
            "parameters": (
                [{"name": n, "value": v} for n, v in entry.parameters]
                if entry is not None else []
            ),
            "object_modified": entry.object_modified if entry is not None else None,
            "plan_id": a.apply.plan_id if a.apply is not None else None,
            "reason": a.reason,
            "reason_code": a.reason_code,
            "note": a.note,
        },
    }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

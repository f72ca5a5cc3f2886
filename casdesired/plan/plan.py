"""The plan: plain data that renderers show and apply carries out, saved as versioned JSON.

A plan holds the ordered changes (Exchange's and DNS records'), the findings (blocking ones
withhold their site's changes, which are kept apart in ``withheld``; DNS ones may block apply),
what apply will refuse without ``--force``, the safety notes people must read before applying
(mailboxes behind each rebinding, the Outlook profile trap), the unmanaged objects, and what it
was computed from: the live state's fingerprint and the desired state's digest (and each
desired-state file's), so apply can refuse a stale plan and name what changed. It never holds a
credential. It is built once (:func:`casdesired.plan.build.assemble`) and never changes
afterwards.

``to_json()`` is documented by ``schemas/plan.schema.json`` (``format_version: 1``). A saved file
carries a checksum over its content; :meth:`Plan.load` refuses a file that fails the schema, the
checksum, or whose recorded invocations no longer match what its changes would run.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casdesired import model
from casdesired.changes.types import BadChange, Change
from casdesired.changes.unmanaged import Unmanaged
from casdesired.findings import Finding, Source
from casdesired.plan.notes import SafetyNote, safety_notes
from casdesired.plan.planfile import (
    FORMAT_VERSION,
    PlanFileError,
    change_from,
    change_json,
    read_document,
    validate_document,
    write_document,
)
from casdesired.plan.thresholds import dns_blocking, fixed_names

ROLLBACK_DIGEST = "rollback of plan {plan_id}"
"""The ``desired_digest`` of a rollback plan: it restores live values, not a desired state."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Plan:
    """What ``casdesired plan`` computed; renderers only read it, apply carries it out."""

    organisation: str
    endpoint: str
    live_fingerprint: str
    desired_digest: str
    changes: tuple[Change, ...] = ()
    findings: tuple[Finding, ...] = ()
    """Every finding: the diff's (errors withhold their site) and DNS's (:attr:`dns`)."""
    withheld: tuple[Change, ...] = ()
    unmanaged: tuple[Unmanaged, ...] = ()
    sites: tuple[str, ...] | None = None
    """The sites the run was limited to (``--site``); None: all declared sites."""
    depends_on: dict[str, str] | None = None
    """Per-object fingerprints of the live objects it depends on (casdesired.plan.depends)."""
    needs_force: tuple[str, ...] = ()
    """Why apply will refuse this plan unless ``--force`` (casdesired.plan.thresholds)."""
    desired_files: dict[str, str] | None = None
    """SHA-256 of each desired-state file it was made from (relative path -> hex digest);
    None in rollback plans and in plan files from before it was recorded."""
    dns_checked: tuple[str, ...] | None = None
    """The sites whose names were asked of the organisation's resolvers (``dns.resolvers``):
    every site in scope when resolvers are configured, none when not; None when not recorded
    (plans saved before it, rollback plans). A checked site without DNS findings is fine."""
    root: str | None = field(default=None, compare=False)
    """The organisation directory, so renderers meant to be shared (Markdown) can show YAML
    locations relative to it instead of the runner's absolute paths. Not saved."""
    plan_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: str = field(default_factory=_now)

    # --- derived facts ------------------------------------------------------------------------

    @property
    def safety(self) -> list[SafetyNote]:
        return safety_notes(self.changes)

    @property
    def counts(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "delete": 0}
        for change in self.changes:
            counts[change.action.value] += 1
        return counts

    @property
    def mailboxes_affected(self) -> int:
        return sum(change.mailboxes for change in self.changes)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def no_changes_message(self) -> str:
        """What to say when the plan has no changes: in sync, or nothing *can* run."""
        if self.withheld or self.blocking_findings:
            return (
                f"No changes can run: {len(self.withheld)} withheld by "
                f"{len(self.blocking_findings)} blocking finding(s) (see below)."
            )
        return "No changes. The live organisation matches the desired state."

    @property
    def blocking_findings(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]

    @property
    def diff_findings(self) -> list[Finding]:
        """What the diff found (and the YAML's binding rules): every finding but DNS's."""
        return [f for f in self.findings if f.source is not Source.DNS]

    @property
    def dns(self) -> list[Finding]:
        """DNS findings: shown apart from the changes, never withholding them."""
        return [f for f in self.findings if f.source is Source.DNS]

    def blocks_apply(self, finding: Finding) -> bool:
        """A DNS error about a name this plan points databases at and does not fix itself:
        apply refuses it unless ``--force``."""
        return finding in self.dns_blocking_apply

    def fixed_by_plan(self, finding: Finding) -> bool:
        """A DNS record change of this plan makes the name right (before the bindings run)."""
        return finding.name is not None and model.key(finding.name) in fixed_names(self.changes)

    def dns_label(self, finding: Finding) -> str:
        """``BLOCKS APPLY`` / ``error`` / ``warning`` (plus what fixes it) for renderers."""
        if self.blocks_apply(finding):
            return "BLOCKS APPLY (unless --force)"
        if self.fixed_by_plan(finding):
            return f"{finding.severity.value}, fixed by this plan"
        return finding.severity.value

    @property
    def summary(self) -> str:
        """``Plan: 1 to create, 6 to change, 0 to destroy; 1,234 mailboxes affected``."""
        c = self.counts
        text = (
            f"Plan: {c['create']} to create, {c['update']} to change, {c['delete']} to destroy; "
            f"{self.mailboxes_affected:,} mailboxes affected"
        )
        blocking = len(self.blocking_findings)
        if blocking:
            text += f"; {blocking} blocking finding(s), {len(self.withheld)} change(s) withheld"
        dns_blocking = len(self.dns_blocking_apply)
        if dns_blocking:
            text += f"; {dns_blocking} DNS finding(s) block apply"
        return text

    @property
    def is_rollback(self) -> bool:
        """A rollback plan (casdesired.apply.rollback) is pinned to the live state only."""
        return self.desired_digest.startswith(ROLLBACK_DIGEST.partition("{")[0])

    @property
    def dns_blocking_apply(self) -> list[Finding]:
        """DNS errors about arrays this plan rebinds databases to: apply needs --force."""
        return dns_blocking(self.dns, self.changes)

    def _dns_json(self, finding: Finding) -> dict[str, Any]:
        return {
            "severity": finding.severity.value,
            "rule": finding.rule,
            "name": finding.name,
            "message": finding.message,
            "site": finding.site,
            "location": str(finding.location) if finding.location else None,
            "blocks_apply": self.blocks_apply(finding),
            "fixed_by_plan": self.fixed_by_plan(finding),
        }

    # --- JSON ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The versioned document ``schemas/plan.schema.json`` describes."""
        return {
            "format_version": FORMAT_VERSION,
            "plan_id": self.plan_id,
            "created_at": self.created_at,
            "organisation": {"name": self.organisation, "endpoint": self.endpoint},
            "live_fingerprint": self.live_fingerprint,
            "desired_digest": self.desired_digest,
            "sites": list(self.sites) if self.sites is not None else None,
            "summary": self.summary,
            "counts": {**self.counts, "mailboxes_affected": self.mailboxes_affected},
            "changes": [change_json(c) for c in self.changes],
            "safety": [n.to_json() for n in self.safety],
            "needs_force": list(self.needs_force),
            "findings": [f.to_json() for f in self.diff_findings],
            "withheld": [change_json(c) for c in self.withheld],
            "unmanaged": [u.to_json() for u in self.unmanaged],
            "dns": [self._dns_json(f) for f in self.dns],
            **({"depends_on": dict(self.depends_on)} if self.depends_on is not None else {}),
            **(
                {"desired_files": dict(self.desired_files)}
                if self.desired_files is not None
                else {}
            ),
            **({"dns_checked": list(self.dns_checked)} if self.dns_checked is not None else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        """Rebuild a plan from :meth:`to_json` output; raises :class:`PlanFileError`."""
        validate_document(data)
        try:
            changes = tuple(change_from(c) for c in data["changes"])
            withheld = tuple(change_from(c) for c in data["withheld"])
        except BadChange as exc:
            raise PlanFileError(f"invalid plan: {exc}") from None
        sites = data.get("sites")
        return cls(
            organisation=data["organisation"]["name"],
            endpoint=data["organisation"]["endpoint"],
            live_fingerprint=data["live_fingerprint"],
            desired_digest=data["desired_digest"],
            changes=changes,
            findings=(
                *(Finding.from_json(f) for f in data["findings"]),
                *(Finding.from_json(n, Source.DNS) for n in data.get("dns", [])),
            ),
            withheld=withheld,
            unmanaged=tuple(Unmanaged.from_json(u) for u in data["unmanaged"]),
            needs_force=tuple(str(r) for r in data.get("needs_force", [])),
            sites=tuple(sites) if sites is not None else None,
            depends_on=dict(data["depends_on"]) if "depends_on" in data else None,
            desired_files=dict(data["desired_files"]) if "desired_files" in data else None,
            dns_checked=tuple(data["dns_checked"]) if "dns_checked" in data else None,
            plan_id=data["plan_id"],
            created_at=data["created_at"],
        )

    # --- files --------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the plan (with its checksum) atomically: a reader never sees half a file."""
        write_document(self.to_json(), path)

    @classmethod
    def load(cls, path: Path) -> Plan:
        """Read a saved plan; any damage or edit gives :class:`PlanFileError`, never a traceback."""
        return cls.from_json(read_document(path))

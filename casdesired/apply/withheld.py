"""What an apply leaves undone on purpose: the sites whose changes blocking findings withheld.

A blocking finding withholds its site's changes (or its object's) and the other sites' changes
go ahead (docs/plan.md). The desired state is then not what the organisation looks like after
the apply, so apply must not pass for a complete one: its report ends with every withheld site,
its blocking findings (``file:line`` when known) and how many changes they withhold, the JSON
report carries the same (``withheld``), and the exit code is 1 (docs/exit-codes.md).

Derived from the plan alone, so a plan made now and a saved plan say the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from casdesired import model
from casdesired.changes.changeset import withheld_by
from casdesired.changes.types import Change
from casdesired.findings import Finding
from casdesired.plan.plan import Plan
from casdesired.visible import clean

ORGANISATION = "the whole organisation"
"""How the text report names the group of findings that name no site."""


@dataclass
class WithheldSite:
    """One site left undone: the blocking findings about it and the changes they withhold."""

    site: str | None
    """The site's name; None for findings that name no site (they withhold every change)."""
    findings: list[Finding] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.site if self.site is not None else ORGANISATION

    def to_json(self) -> dict[str, Any]:
        """An entry of the apply report's ``withheld`` (schemas/apply-report.schema.json)."""
        return {
            "site": self.site,
            "count": len(self.changes),
            "findings": [
                {
                    "rule": f.rule,
                    "message": f.message,
                    "location": str(f.location) if f.location else None,
                    "object": f.name if f.object_scoped else None,
                }
                for f in self.findings
            ],
            "changes": [
                {
                    "kind": c.kind,
                    "action": c.action.value,
                    "site": c.site,
                    "identity": c.identity,
                    "description": c.describe(),
                }
                for c in self.changes
            ],
        }


def withheld_sites(plan: Plan) -> list[WithheldSite]:
    """Every site a blocking finding concerns or whose changes were withheld, by name; the
    findings that name no site last. Empty when the plan withholds nothing."""
    blocking = plan.blocking_findings
    groups: dict[str | None, WithheldSite] = {}

    def group(site: str | None) -> WithheldSite:
        key = model.key(site) if site else None
        return groups.setdefault(key, WithheldSite(site or None))

    for finding in blocking:
        group(finding.site).findings.append(finding)
    for change in plan.withheld:
        group(change.site).changes.append(change)
    for entry in groups.values():
        # A change can be withheld by a finding of another site (an array delete whose
        # rebindings another site's finding withheld) or of none: name that finding too.
        entry.findings += [
            f for f in blocking
            if f not in entry.findings and any(withheld_by(c, [f]) for c in entry.changes)
        ]
    return sorted(
        groups.values(), key=lambda g: (g.site is None, model.key(g.site) if g.site else "")
    )


def count(sites: list[WithheldSite]) -> int:
    return sum(len(s.changes) for s in sites)


def lines(sites: list[WithheldSite]) -> list[str]:
    """The end of the apply's text report: what was not applied, and why."""
    names = ", ".join(clean(s.label) for s in sites)
    text = [f"Withheld, not applied: {count(sites)} change(s) of {len(sites)} site(s) ({names}), "
            "by blocking findings:"]
    for site in sites:
        text.append(f"  {clean(site.label)}: {len(site.changes)} change(s) withheld by "
                    f"{len(site.findings)} blocking finding(s)")
        for finding in site.findings:
            where = f"{clean(finding.location)}: " if finding.location else ""
            text.append(f"    BLOCKING [{clean(finding.rule)}] {where}{clean(finding.message)}")
    text.append("Fix these findings, then make a new plan and apply it: until then the "
                "organisation does not match the desired state.")
    return text


def summary(sites: list[WithheldSite]) -> str:
    """``4 withheld by blocking findings (HQ)``: for the one-line error of an apply."""
    return (f"{count(sites)} withheld by blocking findings "
            f"({', '.join(clean(s.label) for s in sites)})")

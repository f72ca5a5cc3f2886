"""A plan seen site by site, for the Markdown summary table and each site's details.

What a reviewer decides per site: how many creates, changes and deletes, how many mailboxes,
whether apply needs ``--force`` because of it (and why, in a word), what blocks it, and whether
its names were checked in DNS. Everything is derived from the :class:`Plan`; nothing new is
computed about the organisation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from casdesired import model
from casdesired.changes.types import Action, BindingChange, Change
from casdesired.findings import Finding
from casdesired.plan.notes import SafetyNote
from casdesired.plan.plan import Plan

ORGANISATION = "(whole organisation)"
"""The row of findings that name no site (a blocking one withholds every change)."""


@dataclass
class SiteView:
    """What the plan holds about one site (or, with ``name=None``, about no site at all)."""

    name: str | None
    changes: list[tuple[int, Change]] = field(default_factory=list)
    """With their position in the plan (1-based): the order they run in."""
    withheld: list[Change] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    dns: list[Finding] = field(default_factory=list)
    dns_blocking: list[Finding] = field(default_factory=list)
    """Its DNS findings that block apply (unless ``--force``): :attr:`Plan.dns_blocking_apply`."""
    notes: list[SafetyNote] = field(default_factory=list)
    dns_checked: bool | None = None
    """None: the plan does not record which sites DNS checked."""
    force: list[str] = field(default_factory=list)
    """Short labels of the ``--force`` reasons this site takes part in."""

    @property
    def label(self) -> str:
        return self.name if self.name is not None else ORGANISATION

    def count(self, action: Action) -> int:
        return sum(1 for _, c in self.changes if c.action is action)

    @property
    def mailboxes(self) -> int:
        return sum(c.mailboxes for _, c in self.changes)

    @property
    def blocking(self) -> list[Finding]:
        """Its findings that withhold changes (DNS findings never do: :attr:`dns_blocking`)."""
        return [f for f in self.findings if f.blocking]

    @property
    def blocks_apply(self) -> list[Finding]:
        """Every finding that blocks apply for this site: those withholding its changes and
        its DNS findings that block apply unless ``--force``."""
        return [*self.blocking, *self.dns_blocking]

    @property
    def has_details(self) -> bool:
        return bool(self.changes or self.withheld or self.findings or self.dns)

    def headline(self) -> str:
        """``3 to create, 4 to change, 0 to delete; 1,234 mailboxes`` (plus what blocks)."""
        text = (
            f"{self.count(Action.CREATE):,} to create, {self.count(Action.UPDATE):,} to change, "
            f"{self.count(Action.DELETE):,} to delete; {self.mailboxes:,} mailboxes"
        )
        if self.blocking:
            text += f"; {len(self.blocking)} blocking finding(s), {len(self.withheld):,} withheld"
        if self.dns_blocking:
            text += f"; {len(self.dns_blocking)} DNS finding(s) block apply"
        return text


# Prefixes of the reasons casdesired.plan.thresholds.needs_force gives, and the short label the
# summary table shows for each. A reason it does not know is shown for every site.
_THRESHOLD, _DELETES, _DNS_GATE = "threshold ", "deletes need --force", "DNS gate:"


def force_label(reason: str) -> str:
    """A word for a ``--force`` reason, for the summary table (the full text is below it)."""
    if reason.startswith(_THRESHOLD):
        return "rebind threshold (org-wide)"
    if reason.startswith(_DELETES):
        return "deletes"
    if reason.startswith(_DNS_GATE):
        return "DNS gate"
    return "see safety decisions"


def _takes_part(reason: str, site: SiteView, dns_gate_sites: set[str]) -> bool:
    if reason.startswith(_THRESHOLD):
        return any(isinstance(c, BindingChange) for _, c in site.changes)
    if reason.startswith(_DELETES):
        return site.count(Action.DELETE) > 0
    if reason.startswith(_DNS_GATE):
        return site.name is not None and model.key(site.name) in dns_gate_sites
    return bool(site.changes)


def site_views(plan: Plan) -> list[SiteView]:
    """One view per site the plan concerns, sorted by name; findings that name no site last.

    A site is listed when it has changes, withheld changes, findings or DNS findings, when the
    run was limited to it (``--site``), or when DNS checked it: a site in sync shows as such.
    """
    views: dict[str, SiteView] = {}
    nowhere = SiteView(None)

    def view(name: str | None) -> SiteView:
        if not name:
            return nowhere
        return views.setdefault(model.key(name), SiteView(name))

    for name in (*(plan.sites or ()), *(plan.dns_checked or ())):
        view(name)
    for i, change in enumerate(plan.changes, 1):
        view(change.site).changes.append((i, change))
    for change in plan.withheld:
        view(change.site).withheld.append(change)
    for finding in plan.diff_findings:
        view(finding.site).findings.append(finding)
    for finding in plan.dns:
        view(finding.site).dns.append(finding)
        if plan.blocks_apply(finding):
            view(finding.site).dns_blocking.append(finding)
    for note in plan.safety:
        view(note.site).notes.append(note)
    checked = {model.key(s) for s in plan.dns_checked or ()}
    gate = {model.key(f.site) for f in plan.dns_blocking_apply if f.site}
    ordered = sorted(views.values(), key=lambda v: model.key(v.label))
    if nowhere.has_details:
        ordered.append(nowhere)
    for site in ordered:
        if plan.dns_checked is not None and site.name is not None:
            site.dns_checked = model.key(site.name) in checked
        site.force = _unique(
            force_label(r) for r in plan.needs_force if _takes_part(r, site, gate)
        )
    return ordered


def _unique(labels: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(labels))

"""The plan as Markdown for pull-request comments: decided from the first screen.

First what a reviewer decides on: a verdict line, a summary table per site (creates, changes,
deletes, mailboxes, whether apply needs ``--force`` and why, blocking findings, whether DNS was
checked), every ``--force`` reason in full under *Safety decisions*, and the DNS status (checked
and fine reads differently from not checked). Then each site's details inside ``<details>``:
one Outlook note with its mailbox total, its changes in the order they run, its findings and
DNS findings, what is withheld. Values are escaped by :mod:`casdesired.plan.markdown_text`.

A comment has a size limit (GitHub's is 65,536 characters): past ``max_bytes`` the details are
shortened site by site, the largest first (first their long tables, then the whole site to
counts), then all of them to one line; the verdict, the summary, the safety decisions and where
the full plan is (the JSON saved with ``--out``, or ``full_plan``) are always kept.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TextIO

from casdesired.changes.types import OUTLOOK_PROFILE_WARNING, Action
from casdesired.findings import Severity
from casdesired.plan.markdown_details import body, details, site_sections, table
from casdesired.plan.markdown_fit import DEFAULT_MAX_BYTES, Block, fit
from casdesired.plan.markdown_sites import SiteView, site_views
from casdesired.plan.markdown_text import html, md
from casdesired.plan.plan import Plan

__all__ = ["DEFAULT_MAX_BYTES", "MarkdownRenderer"]

ROWS_KEPT = (1000, 200, 20)
"""Rows of a long table a shortened site keeps, as it is shortened further."""
UNMANAGED_LISTED = 50
"""Unmanaged objects listed before the rest are only counted."""

_URL = re.compile(r"https?://[^\s<>]+")


class MarkdownRenderer:
    """Renders a plan as a GitHub-flavoured Markdown comment of at most ``max_bytes`` bytes."""

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_BYTES, full_plan: str | None = None):
        self.max_bytes = max_bytes
        self.full_plan = full_plan
        """Where the full plan is (a URL or a file name): said whenever details are left out."""

    def render(self, plan: Plan, out: TextIO) -> None:
        out.write(self.text(plan))

    def lines(self, plan: Plan) -> list[str]:
        return self.text(plan).splitlines()

    def text(self, plan: Plan) -> str:
        sites = site_views(plan)
        head = "\n".join(self._head(plan, sites)) + "\n"
        tail = "\n" + "\n".join(self._footer(plan)) + "\n"
        blocks = [self._site_block(plan, s) for s in sites if s.has_details]
        if plan.unmanaged:
            blocks.append(self._unmanaged_block(plan))
        if blocks:
            head += "\n#### Details by site\n"
        shortened = (
            f"\n_The full plan is larger than this comment may be ({self.max_bytes:,} bytes): "
            f"details below are shortened. Full plan: {self._link()}._\n"
        )
        left_out = (
            f"\nThe details of {len(blocks)} part(s) are left out to keep this comment short. "
            f"Full plan: {self._link()}.\n"
        )
        return fit(head, blocks, tail, self.max_bytes, shortened, left_out)

    # --- the first screen ------------------------------------------------------------------

    def _head(self, plan: Plan, sites: list[SiteView]) -> list[str]:
        scope = (
            f" Limited to site(s) {md(', '.join(plan.sites))} (`--site`)."
            if plan.sites is not None
            else ""
        )
        lines = [
            f"### casdesired plan for {md(plan.organisation)}",
            "",
            f"**Verdict: {_verdict(plan)}**",
            "",
            md(plan.summary) + "." + scope,
            "",
        ]
        if sites:
            lines += table(
                [
                    "Site", "Creates", "Changes", "Deletes", "Mailboxes",
                    "Needs `--force`", "Blocking findings", "DNS checked",
                ],
                "lrrrrlll",
                (_summary_row(plan, s) for s in sites),
            )
            lines.append("")
        lines += ["#### Safety decisions", ""]
        if plan.needs_force:
            lines += [f"- **needs `--force`**: {md(reason)}" for reason in plan.needs_force]
        else:
            lines.append("- No `--force` needed: no threshold is exceeded, nothing is deleted.")
        affected = [s for s in sites if s.notes]
        if affected:
            total = sum(n.mailboxes for s in affected for n in s.notes)
            lines.append(
                f"- **Outlook 2007/2010**: {total:,} mailboxes in {len(affected)} site(s) get a "
                f"new RPC endpoint (per site below); {OUTLOOK_PROFILE_WARNING}."
            )
        lines += ["", "#### DNS", "", _dns_status(plan)]
        return lines

    # --- details, site by site -------------------------------------------------------------

    def _site_block(self, plan: Plan, site: SiteView) -> Block:
        summary = f"{html(site.label)}: {site.headline()}"
        if site.name is None:
            summary = f"Findings that name no site: {len(site.findings) + len(site.dns)}"
        sections = site_sections(plan, site)
        longest = max((len(s.rows) for s in sections), default=0)
        levels = [details(summary, body(sections, None))]
        levels += [details(summary, body(sections, k)) for k in ROWS_KEPT if k < longest]
        levels.append(details(summary, [self._counts(site)]))
        return Block(tuple(levels))

    def _counts(self, site: SiteView) -> str:
        parts = [
            f"{len(items):,} {what}"
            for items, what in (
                (site.changes, "change(s)"),
                (site.findings, "finding(s)"),
                (site.dns, "DNS finding(s)"),
                (site.withheld, "withheld change(s)"),
            )
            if items
        ]
        left = ", ".join(parts)
        return f"Left out to keep this comment short: {left}. Full plan: {self._link()}."

    def _unmanaged_block(self, plan: Plan) -> Block:
        counts = Counter(u.kind for u in plan.unmanaged)
        summary = "Unmanaged objects, never touched: " + ", ".join(
            f"{n:,} {html(kind)}" for kind, n in sorted(counts.items())
        )
        shown = plan.unmanaged[:UNMANAGED_LISTED]
        body = table(
            ["Kind", "Identity", "Site", "Detail"],
            "llll",
            ([md(u.kind), md(u.identity), md(u.site or ""), md(u.detail)] for u in shown),
        )
        if len(plan.unmanaged) > len(shown):
            body += ["", f"… and {len(plan.unmanaged) - len(shown):,} more (in the full plan)."]
        return Block((details(summary, body), details(summary, ["Listed in the full plan."])))

    def _footer(self, plan: Plan) -> list[str]:
        return [
            "---",
            "",
            f"Full plan (JSON): {self._link()}. Plan {md(plan.plan_id)} of "
            f"{md(plan.endpoint)}; live fingerprint {md(plan.live_fingerprint[:19])}.",
        ]

    def _link(self) -> str:
        if self.full_plan is None:
            return "not saved by this run (`casdesired plan --out FILE` saves it)"
        if _URL.fullmatch(self.full_plan):
            return f"<{self.full_plan}>"
        return md(self.full_plan)


def _verdict(plan: Plan) -> str:
    if not plan.changes:
        blocked = plan.withheld or plan.blocking_findings
        return ("⛔ " if blocked else "✅ ") + md(plan.no_changes_message)
    parts = []
    if plan.blocking_findings:
        parts.append(
            f"⛔ {len(plan.withheld):,} change(s) withheld by {len(plan.blocking_findings)} "
            "blocking finding(s), the rest can run"
        )
    if plan.needs_force:
        parts.append(
            f"⚠️ apply needs `--force` ({len(plan.needs_force)} reason(s) under Safety decisions)"
        )
    if not parts:
        parts.append("✅ ready to apply: no blocking findings, no `--force` needed")
    return "; ".join(parts)


def _summary_row(plan: Plan, site: SiteView) -> list[str]:
    force = f"**yes**: {', '.join(site.force)}" if site.force else "no"
    # Every finding that blocks apply for the site: those that withhold its changes and its DNS
    # findings that block apply unless --force (the plan's summary line counts both).
    blocking = str(len(site.blocks_apply))
    details = [f"{len(site.withheld):,} withheld"] if site.withheld else []
    if site.dns_blocking:
        details.append(f"{len(site.dns_blocking)} DNS, unless `--force`")
    if details:
        blocking += f" ({'; '.join(details)})"
    return [
        md(site.label),
        f"{site.count(Action.CREATE):,}",
        f"{site.count(Action.UPDATE):,}",
        f"{site.count(Action.DELETE):,}",
        f"{site.mailboxes:,}",
        force,
        blocking,
        _dns_cell(plan, site),
    ]


def _dns_cell(plan: Plan, site: SiteView) -> str:
    if site.name is None:
        return f"{len(site.dns)} finding(s)" if site.dns else ""
    if site.dns_checked is None:
        mark = "not recorded"
    else:
        mark = "✓" if site.dns_checked else "✗ not checked"
    if site.dns:
        blocks = sum(1 for f in site.dns if plan.blocks_apply(f))
        mark += f" ({len(site.dns)} finding(s)" + (f", {blocks} block apply)" if blocks else ")")
    return mark


def _dns_status(plan: Plan) -> str:
    findings = plan.dns
    errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    blocking = len(plan.dns_blocking_apply)
    found = (
        f"{len(findings)} finding(s) ({errors} error(s), {blocking} blocking apply unless "
        "`--force`), in the site details below."
        if findings
        else "no findings ✓."
    )
    if plan.dns_checked is None:
        found = found.replace(" ✓", "")  # nothing says what was checked
        return f"Which sites DNS checked is not recorded in this plan; {found}"
    if not plan.dns_checked:
        return "✗ Not checked: no resolvers are configured (`dns.resolvers`)."
    names = ", ".join(plan.dns_checked)
    return f"Checked for {len(plan.dns_checked)} site(s) ({md(names)}): {found}"



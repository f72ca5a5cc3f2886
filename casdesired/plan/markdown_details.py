"""A site's details in the Markdown plan: its Outlook note, changes, findings, DNS, withheld.

Each value is escaped once (:mod:`casdesired.plan.markdown_text`) into :class:`Section` rows, so
a site shortened to fit the comment (``casdesired.plan.markdown_fit``) reuses them with fewer
rows instead of escaping 10,000 names again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from casdesired.changes.types import OUTLOOK_PROFILE_WARNING
from casdesired.findings import Finding
from casdesired.plan.markdown_sites import SiteView
from casdesired.plan.markdown_text import md, where
from casdesired.plan.plan import Plan


def table(headers: Sequence[str], align: str, rows: Iterable[Sequence[str]]) -> list[str]:
    """A GFM table; ``align`` has one letter per column: ``l`` or ``r``."""
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append("|" + "|".join("--:" if a == "r" else "---" for a in align) + "|")
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def number(n: int) -> str:
    return f"{n:,}" if n else ""


@dataclass(frozen=True)
class Section:
    """A part of a site's details: a bold title, then a paragraph or a table."""

    title: str
    text: str = ""
    headers: tuple[str, ...] = ()
    align: str = ""
    rows: tuple[list[str], ...] = ()
    what: str = ""
    """What the rows are, for "… and N more <what>"."""


def site_sections(plan: Plan, site: SiteView) -> list[Section]:
    """A site's details, each value escaped once (a shortened site reuses the rows)."""
    sections = []
    if site.notes:
        sections.append(Section("", outlook_note(site)))
    if site.changes:
        rows = tuple([str(i), md(c.describe()), number(c.mailboxes)] for i, c in site.changes)
        sections.append(
            Section("**Changes** (# is the order they run in)", "", ("#", "Change", "Mailboxes"),
                    "rlr", rows, "changes")
        )
    if site.findings:
        rows = tuple(finding_row(plan, f) for f in site.findings)
        sections.append(
            Section("**Findings**", "", ("Severity", "Rule", "Where", "Finding"), "llll", rows,
                    "findings")
        )
    if site.dns:
        rows = tuple(dns_row(plan, f) for f in site.dns)
        sections.append(
            Section("**DNS**", "", ("DNS", "Rule", "Name", "Where", "Finding"), "lllll", rows,
                    "DNS findings")
        )
    elif site.dns_checked:
        sections.append(Section("", "**DNS**: checked, no findings ✓"))
    if site.withheld:
        rows = tuple([md(c.describe()), number(c.mailboxes)] for c in site.withheld)
        sections.append(
            Section("**Withheld by blocking findings** (not applied)", "", ("Change", "Mailboxes"),
                    "lr", rows, "withheld changes")
        )
    return sections


def body(sections: list[Section], keep: int | None) -> list[str]:
    """The sections as Markdown lines, each table cut to ``keep`` rows (None: all)."""
    lines: list[str] = []
    for section in sections:
        if lines:
            lines.append("")
        if section.title:
            lines += [section.title, ""]
        if section.text:
            lines.append(section.text)
        if section.headers:
            rows = list(section.rows)
            more: list[str] = []
            if keep is not None and len(rows) > keep:
                more = ["", f"… and {len(rows) - keep:,} more {section.what} (in the full plan)."]
                rows = rows[:keep]
            lines += table(section.headers, section.align, rows) + more
    return lines


def details(summary: str, lines: list[str]) -> str:
    """A ``<details>`` block; ``summary`` is raw HTML text (already escaped with ``html``)."""
    return "\n".join([f"<details><summary>{summary}</summary>", "", *lines, "", "</details>"])


def outlook_note(site: SiteView) -> str:
    suffix = f"; {OUTLOOK_PROFILE_WARNING}"
    rebound = sum(1 for n in site.notes if n.change.startswith("binding:"))
    parts = [f"{rebound:,} database(s) rebound"] if rebound else []
    parts += [
        md(n.message.removesuffix(suffix))
        for n in site.notes
        if not n.change.startswith("binding:")
    ]
    total = sum(n.mailboxes for n in site.notes)
    return (
        f"**Outlook 2007/2010**: {total:,} mailboxes get a new RPC endpoint "
        f"({'; '.join(parts)}); {OUTLOOK_PROFILE_WARNING}."
    )


def finding_row(plan: Plan, finding: Finding) -> list[str]:
    return [
        "**blocking**" if finding.blocking else md(finding.severity.value),
        md(finding.rule),
        md(where(finding.location, plan.root)),
        md(finding.message),
    ]


def dns_row(plan: Plan, finding: Finding) -> list[str]:
    label = md(plan.dns_label(finding))
    return [
        f"**{label}**" if plan.blocks_apply(finding) else label,
        md(finding.rule),
        md(finding.name),
        md(where(finding.location, plan.root)),
        md(finding.message),
    ]

"""The drift report as Markdown for an issue body (a nightly job opens or updates one with it).

Every value from the YAML, from Exchange or from its audit log goes through the plan's escaping
(:mod:`casdesired.plan.markdown_text`): a hostile database name, caller or parameter value can
neither break the table nor start markup, a link, a mention or an issue reference. The table
keeps within :data:`MAX_BYTES` (GitHub's issue body limit is 65,536 characters): rows past it
are counted, and the JSON (``--format json``) has them all.
"""

from __future__ import annotations

from typing import TextIO

from casdesired.drift.attribution import Status
from casdesired.drift.render import command, values, when
from casdesired.drift.report import DriftItem, DriftReport
from casdesired.plan.markdown_text import md

MAX_BYTES = 60_000
"""The table's budget, leaving room for the rest under GitHub's 65,536-character limit."""
HEADER = (
    "| Object | Site | Git says | Exchange says | Changed by | When (UTC) | How |\n"
    "|---|---|---|---|---|---|---|"
)


class MarkdownRenderer:
    def __init__(self, *, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes

    def render(self, report: DriftReport, out: TextIO) -> None:
        out.write("\n".join(self.lines(report)) + "\n")

    def lines(self, report: DriftReport) -> list[str]:
        scope = f" (sites: {md(', '.join(report.sites))})" if report.sites is not None else ""
        lines = [f"### casdesired drift for {md(report.organisation)}{scope}", ""]
        drifted = report.drifted
        if drifted or report.blocking:
            unknown = sum(1 for i in drifted if i.attribution.status is Status.UNKNOWN)
            verdict = f"⚠️ {len(drifted):,} object(s) changed outside git"
            if unknown:
                verdict += f" ({unknown:,} by unknown hands)"
        else:
            verdict = "✅ no drift: the organisation matches git"
        lines += [f"**{verdict}**", "", md(report.summary), ""]
        lines.append(
            f"Since {md(when(report.window.since))} ({md(report.window.source)}). Exchange's "
            f"admin audit log: {md(report.audit.describe())}."
        )
        lines.append("")
        if drifted:
            lines += ["#### Changed outside git", "", *self._table(drifted), ""]
            notes = [i for i in drifted if i.attribution.note or i.orphaned or i.withheld]
            for item in notes:
                lines.append(f"- {md(item.what)}: {md(_flags(item))}")
            if notes:
                lines.append("")
        if report.pending:
            lines += [
                "#### Not applied yet",
                "",
                "The live value is the one casdesired's own apply set; git has changed since "
                "(not drift: the next apply makes it match).",
                "",
                *self._table(report.pending),
                "",
            ]
        if report.findings:
            lines += ["#### Findings", ""]
            for finding in report.findings:
                label = "**blocking**" if finding.blocking else "warning"
                lines.append(f"- {label} ({md(finding.rule)}): {md(finding.message)}")
            lines.append("")
        if report.notes or report.hints:
            lines += ["#### Notes", ""]
            lines += [f"- {md(note)}" for note in report.notes]
            lines += [f"- **hint**: {md(hint)}" for hint in report.hints]
            lines.append("")
        lines.append(f"<sub>casdesired drift, {md(when(report.generated))}</sub>")
        return lines

    def _table(self, items: list[DriftItem]) -> list[str]:
        rows = [HEADER]
        size = len(HEADER.encode())
        for index, item in enumerate(items):
            row = _row(item)
            size += len(row.encode()) + 1
            if size > self.max_bytes:
                rows.append("")
                rows.append(
                    f"… and {len(items) - index:,} more (all of them: casdesired drift "
                    "--format json)"
                )
                break
            rows.append(row)
        return rows


def _row(item: DriftItem) -> str:
    a = item.attribution
    entry = a.entry
    if a.status is Status.UNKNOWN or entry is None:
        by, at, how = f"unknown: {a.reason}", "", ""
    else:
        by = entry.caller if a.status is Status.OUTSIDE else f"casdesired (plan {_plan(item)})"
        at = when(entry.run_date).removesuffix(" UTC")
        how = command(entry)
    cells = [
        item.what, item.site or "", values(item.git, "(absent, or not managed)"),
        values(item.exchange), by, at, how,
    ]
    return "| " + " | ".join(md(c) for c in cells) + " |"


def _plan(item: DriftItem) -> str:
    apply = item.attribution.apply
    return apply.plan_id if apply is not None else "?"


def _flags(item: DriftItem) -> str:
    parts = []
    if item.orphaned:
        parts.append("orphaned pointer: its CAS array was removed while it still pointed at it")
    if item.withheld:
        parts.append("withheld: a blocking finding keeps the plan from fixing it")
    if item.attribution.note:
        parts.append(item.attribution.note)
    return "; ".join(parts)

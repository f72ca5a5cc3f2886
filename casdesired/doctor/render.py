"""doctor's report as text (terminals), JSON (schemas/doctor.schema.json) or Markdown.

The report is plain data (:class:`~casdesired.doctor.model.Report`); these only show it. Every
value that came from a host or from the YAML is shown as plain text: control characters are
escaped in text (:func:`casdesired.visible.clean`) and Markdown escapes everything
that could start markup, a link, a mention or a table cell (:func:`casdesired.plan.markdown_text
.md`), as the plan's renderers do.
"""

from __future__ import annotations

import json
import textwrap
from typing import TextIO

from casdesired.doctor.model import Check, Report, Status
from casdesired.plan.markdown_text import md
from casdesired.visible import clean

WIDTH = 100
INDENT = 11


def summary(report: Report) -> str:
    return ", ".join(f"{report.count(s)} {s.value}" for s in Status)


def _executions(report: Report) -> str:
    count = report.executions
    return f"{count} command execution{'s' if count != 1 else ''} on the endpoint"


class TextRenderer:
    """A checklist for a terminal, family by family."""

    def render(self, report: Report, out: TextIO) -> None:
        out.write(self.text(report))

    def text(self, report: Report) -> str:
        lines = [
            f"casdesired doctor: organisation {clean(report.organisation)}, endpoint "
            f"{clean(report.endpoint)}",
            f"{_executions(report)}; nothing was changed.",
        ]
        for heading, checks in report.families():
            lines += ["", heading]
            for found in checks:
                lines += self._check(found)
        lines += ["", f"Summary: {summary(report)}"]
        return "\n".join(lines) + "\n"

    def _check(self, found: Check) -> list[str]:
        subject = f" [{clean(found.subject)}]" if found.subject else ""
        head = f"  {found.status.value:<8} {found.id}{subject}: {clean(found.title)}"
        lines = textwrap.wrap(head, WIDTH, subsequent_indent=" " * INDENT,
                              break_on_hyphens=False) or [head]
        for fact in found.evidence:
            lines += self._wrap(clean(fact))
        if found.remedy:
            lines += self._wrap("remedy: " + clean(found.remedy))
        if found.doc and found.status in (Status.WARN, Status.FAIL):
            lines += self._wrap("see: " + found.doc)
        return lines

    def _wrap(self, text: str) -> list[str]:
        pad = " " * INDENT
        return textwrap.wrap(text, WIDTH, initial_indent=pad, subsequent_indent=pad + "  ",
                             break_on_hyphens=False) or [pad]


class JsonRenderer:
    """The report as JSON, valid against schemas/doctor.schema.json."""

    def render(self, report: Report, out: TextIO) -> None:
        json.dump(report.to_json(), out, indent=2, ensure_ascii=False)
        out.write("\n")


class MarkdownRenderer:
    """A GitHub-flavoured Markdown checklist: a table, then what to do about each problem."""

    def render(self, report: Report, out: TextIO) -> None:
        out.write(self.text(report))

    def text(self, report: Report) -> str:
        failed = report.count(Status.FAIL)
        verdict = (f"**{failed} check(s) FAIL**" if failed else "**No check fails**")
        lines = [
            f"### casdesired doctor: {md(report.organisation)}",
            "",
            f"{verdict} ({md(summary(report))}). Endpoint {md(report.endpoint)}, "
            f"{_executions(report)}; nothing was changed.",
            "",
            "| Status | Check | What it found |",
            "|---|---|---|",
        ]
        for found in report.checks:
            subject = f" ({md(found.subject)})" if found.subject else ""
            evidence = "<br>".join(md(fact) for fact in found.evidence) or " "
            lines.append(
                f"| {found.status.value} | `{found.id}`{subject}: {md(found.title)} | "
                f"{evidence} |"
            )
        problems = [c for c in report.checks if c.status in (Status.FAIL, Status.WARN)]
        if problems:
            lines += ["", "#### What to change", ""]
            for found in problems:
                subject = f" ({md(found.subject)})" if found.subject else ""
                where = f" See {md(found.doc)}." if found.doc else ""
                lines.append(f"- **{found.status.value}** `{found.id}`{subject}: "
                             f"{md(found.remedy or '')}{where}")
        return "\n".join(lines) + "\n"


RENDERERS: dict[str, type[TextRenderer] | type[JsonRenderer] | type[MarkdownRenderer]] = {
    "text": TextRenderer,
    "json": JsonRenderer,
    "markdown": MarkdownRenderer,
}

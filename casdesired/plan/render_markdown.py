"""The plan as Markdown for pull-request comments.

Safety decisions and findings get their own sections, apart from the changes, so a reviewer sees
them even when the change table is long. Every value from the YAML or from Exchange goes through
:func:`cell`, which escapes what Markdown tables and the HTML GitHub renders would otherwise act
on: a database named ``a|b<script>`` must show as text, not break the table or inject markup, and
``@team`` or ``#12`` must not ping anyone or link an issue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import replace
from pathlib import PurePath
from typing import TextIO

from casdesired.changes.types import Change
from casdesired.findings import Location
from casdesired.plan.plan import Plan

# Characters that Markdown (tables, emphasis, links, code spans) or HTML would interpret, as
# numeric character references; GitHub shows them as the characters themselves.
_ESCAPES = {c: f"&#{ord(c)};" for c in "&<>\"'|`*_[]\\~#@"}
_ESCAPES.update({"\r\n": "<br>", "\n": "<br>", "\r": "<br>", "\t": " "})

UNMANAGED_LISTED = 50
"""Unmanaged objects listed in full before the table is cut short (10,000 databases...)."""


def cell(value: object) -> str:
    """A value made safe for a Markdown table cell (or any Markdown text)."""
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n")
    out: list[str] = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append("&#65533;")  # other control characters: shown as a replacement mark
        else:
            out.append(ch)
    return "".join(out)


def where(location: Location | None, root: str | None) -> str:
    """A YAML location for a comment others read: relative to the organisation directory.

    A pull-request comment must not show the runner's absolute paths (they mean nothing to the
    reader and disclose the runner's layout): outside the directory, or with none known, only
    the file's name is shown.
    """
    if location is None:
        return ""
    path = PurePath(location.path)
    shown = path.name
    if root is not None:
        with suppress(ValueError):  # outside the directory: the name only
            shown = path.relative_to(root).as_posix()
    elif not path.is_absolute():
        shown = path.as_posix()
    return str(replace(location, path=shown))


def _values(values: dict[str, object] | None) -> str:
    if not values:
        return ""
    parts = []
    for k, v in values.items():
        shown = ", ".join(str(x) for x in v) if isinstance(v, list) else ("" if v is None else v)
        parts.append(f"{cell(k)}: {cell(shown) or '&#8212;'}")
    return "<br>".join(parts)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _change_rows(changes: Sequence[Change]) -> list[list[str]]:
    return [
        [
            str(i),
            cell(c.action.symbol),
            cell(c.describe()),
            cell(c.site),
            _values(c.before()),
            _values(c.after()),
            f"{c.mailboxes:,}" if c.mailboxes else "",
        ]
        for i, c in enumerate(changes, 1)
    ]


class MarkdownRenderer:
    """Renders a plan as a GitHub-flavoured Markdown comment."""

    def render(self, plan: Plan, out: TextIO) -> None:
        out.write("\n".join(self.lines(plan)) + "\n")

    def lines(self, plan: Plan) -> list[str]:
        lines = [
            f"### casdesired plan for {cell(plan.organisation)}",
            "",
            f"**{cell(plan.summary)}**",
            "",
            f"Endpoint {cell(plan.endpoint)}"
            + (f", sites {cell(', '.join(plan.sites))}" if plan.sites is not None else "")
            + f"; plan {cell(plan.plan_id)}, live fingerprint {cell(plan.live_fingerprint[:19])}",
            "",
            "#### Changes, in the order they run",
            "",
        ]
        headers = ["#", "", "Change", "Site", "Before", "After", "Mailboxes"]
        if plan.changes:
            lines += _table(headers, _change_rows(plan.changes))
        else:
            lines.append(cell(plan.no_changes_message))
        lines += ["", "#### Safety decisions", ""]
        if plan.needs_force:
            lines += [f"- **needs `--force`**: {cell(reason)}" for reason in plan.needs_force]
            lines.append("")
        if plan.safety:
            lines += _table(
                ["Change", "Site", "Mailboxes", "Why it matters"],
                (
                    [cell(n.change), cell(n.site), f"{n.mailboxes:,}", cell(n.message)]
                    for n in plan.safety
                ),
            )
        elif not plan.needs_force:
            lines.append("None.")
        lines += ["", "#### Findings", ""]
        if plan.diff_findings:
            lines += _table(
                ["Severity", "Rule", "Site", "Where", "Finding"],
                (
                    [
                        ("**blocking**" if f.blocking else "warning"),
                        cell(f.rule),
                        cell(f.site or "(all)"),
                        cell(where(f.location, plan.root)),
                        cell(f.message),
                    ]
                    for f in plan.diff_findings
                ),
            )
        else:
            lines.append("None.")
        if plan.dns:
            lines += ["", "#### DNS", ""]
            lines += _table(
                ["Severity", "Rule", "Name", "Where", "Finding"],
                (
                    [
                        (
                            f"**{cell(plan.dns_label(n))}**"
                            if plan.blocks_apply(n)
                            else cell(plan.dns_label(n))
                        ),
                        cell(n.rule),
                        cell(n.name),
                        cell(where(n.location, plan.root)),
                        cell(n.message),
                    ]
                    for n in plan.dns
                ),
            )
        if plan.withheld:
            lines += ["", "#### Withheld by blocking findings (not applied)", ""]
            lines += _table(headers, _change_rows(plan.withheld))
        if plan.unmanaged:
            counts = Counter(u.kind for u in plan.unmanaged)
            summary = ", ".join(f"{n:,} {cell(kind)}" for kind, n in sorted(counts.items()))
            lines += [
                "",
                f"<details><summary>Unmanaged objects, never touched: {summary}</summary>",
                "",
            ]
            shown = plan.unmanaged[:UNMANAGED_LISTED]
            lines += _table(
                ["Kind", "Identity", "Site", "Detail"],
                (
                    [cell(u.kind), cell(u.identity), cell(u.site or ""), cell(u.detail)]
                    for u in shown
                ),
            )
            if len(plan.unmanaged) > len(shown):
                lines += ["", f"… and {len(plan.unmanaged) - len(shown):,} more."]
            lines += ["", "</details>"]
        return lines

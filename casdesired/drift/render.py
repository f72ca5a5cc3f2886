"""The drift report for terminals and for machines.

Text: rich ``Text`` only (never markup), control characters shown escaped
(:func:`casdesired.visible.clean`), colour only on a terminal without ``NO_COLOR`` —
as the plan. JSON: :meth:`DriftReport.to_json` (``schemas/drift.schema.json``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TextIO

from rich.console import Console
from rich.text import Text

from casdesired.agent.protocol import JsonValue
from casdesired.drift.attribution import Status
from casdesired.drift.report import DriftItem, DriftReport
from casdesired.drift.sources import AuditEntry
from casdesired.plan.render_text import wants_colour
from casdesired.visible import clean

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:/\\@")


def when(moment: datetime | None) -> str:
    if moment is None:
        return "an unreadable time"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def values(data: Mapping[str, JsonValue] | None, absent: str = "(absent)") -> str:
    """A change's before/after values in one line."""
    if data is None:
        return absent
    if not data:
        return "(nothing)"
    parts = []
    for name, value in data.items():
        if isinstance(value, list):
            shown = ", ".join(str(v) for v in value) or "(empty)"
        elif value in (None, ""):
            shown = "(blank)"
        else:
            shown = str(value)
        parts.append(shown if len(data) == 1 else f"{name.replace('_', ' ')} {shown}")
    return "; ".join(parts)


def command(entry: AuditEntry) -> str:
    """The run as a command line: ``Set-MailboxDatabase -Identity DB01 -... 'a b'``."""
    parts = [entry.cmdlet]
    for name, value in entry.parameters:
        shown = value if value and set(value) <= _SAFE else "'" + value.replace("'", "''") + "'"
        parts.append(f"-{name} {shown}")
    return " ".join(parts)


def who(item: DriftItem) -> str:
    """Changed by whom, when and how — or why nobody can say."""
    a = item.attribution
    entry = a.entry
    if a.status is Status.UNKNOWN or entry is None:
        return f"unknown ({a.reason})"
    text = f"{entry.caller} at {when(entry.run_date)} with {command(entry)}"
    if a.status is Status.CASDESIRED and a.apply is not None:
        text = f"casdesired (plan {a.apply.plan_id}, its {a.apply.source}): " + text
    return text


class TextRenderer:
    def __init__(self, *, colour: bool | None = None, width: int | None = None) -> None:
        self.colour = colour
        self.width = width

    def render(self, report: DriftReport, out: TextIO) -> None:
        colour = wants_colour(out) if self.colour is None else self.colour
        console = Console(
            file=out, force_terminal=colour, no_color=not colour,
            color_system="auto" if colour else None, highlight=False, markup=False,
            emoji=False, width=self.width or (None if colour else 200), soft_wrap=True,
        )
        say = console.print
        scope = f" (sites: {', '.join(report.sites)})" if report.sites is not None else ""
        say(Text(f"casdesired drift for {clean(report.organisation)} at "
                 f"{clean(report.endpoint)}{scope}", style="bold"))
        say(Text(f"Since {when(report.window.since)} ({clean(report.window.source)})"))
        say(Text(f"Exchange's admin audit log: {clean(report.audit.describe())}"))
        say()
        if report.drifted:
            say(Text(f"Changed outside git ({len(report.drifted):,}):", style="bold"))
            for item in report.drifted:
                self._item(console, item)
        if report.pending:
            say(Text(f"Not applied yet: the live value is casdesired's own, git changed since "
                     f"({len(report.pending):,}):", style="bold"))
            for item in report.pending:
                self._item(console, item)
        if report.findings:
            say(Text("Findings:", style="bold"))
            for finding in report.findings:
                label = "BLOCKING" if finding.blocking else "warning"
                say(Text(f"  {label} [{clean(finding.rule)}] {clean(finding.message)}",
                         style="bold red" if finding.blocking else "yellow"))
            say()
        for note in report.notes:
            say(Text(f"Note: {clean(note)}", style="dim"))
        for hint in report.hints:
            say(Text(f"Hint: {clean(hint)}", style="yellow"))
        if report.notes or report.hints:
            say()
        say(Text(clean(report.summary), style="bold red" if report.exit_code else "green"))

    @staticmethod
    def _item(console: Console, item: DriftItem) -> None:
        a = item.attribution
        style = {"outside": "red", "unknown": "yellow", "casdesired": "cyan"}[a.status.value]
        flags = "".join(
            f" ({flag})" for flag, on in (("orphaned pointer", item.orphaned),
                                          ("withheld by a finding", item.withheld)) if on
        )
        site = f"  [{clean(item.site)}]" if item.site else ""
        console.print(Text(f"  ! {clean(item.what)}{flags}{site}", style=style))
        rows = [
            ("git says", values(item.git, "(absent, or not managed)")),
            ("Exchange says", values(item.exchange)),
        ]
        if item.last_applied is not None:
            last = item.last_applied
            rows.append(("last applied", f"{values(last.value)} (plan {last.plan_id}, "
                                         f"{when(last.time)})"))
        rows.append(("changed by", who(item)))
        if a.note:
            rows.append(("note", a.note))
        rows.append(("to match git", item.fix))
        for label, text in rows:
            console.print(Text(f"      {label + ':':<15}{clean(text)}"))
        console.print()


class JsonRenderer:
    def render(self, report: DriftReport, out: TextIO) -> None:
        out.write(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")

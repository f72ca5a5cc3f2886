"""The plan for terminals: ``+ ~ -`` symbols, colour when it helps, a one-line summary.

Colour only when the output is a terminal and ``NO_COLOR`` is not set (https://no-color.org).
Values are written as rich ``Text`` (never markup), and control characters are shown escaped, so
a database name holding ``[bold]`` or an ANSI escape sequence prints as the characters it is.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from typing import TextIO

from rich.console import Console
from rich.text import Text

from casdesired.changes.types import OUTLOOK_PROFILE_WARNING, Action, Change
from casdesired.plan.plan import Plan
from casdesired.visible import clean

_STYLE = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.DELETE: "red"}
UNMANAGED_LISTED = 20
"""Unmanaged objects listed one by one before the rest are only counted."""


def wants_colour(out: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set to anything non-empty."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


class TextRenderer:
    """Human-readable plan output."""

    def __init__(self, *, colour: bool | None = None, width: int | None = None) -> None:
        self.colour = colour
        self.width = width

    def render(self, plan: Plan, out: TextIO) -> None:
        colour = wants_colour(out) if self.colour is None else self.colour
        console = Console(
            file=out,
            force_terminal=colour,
            no_color=not colour,
            color_system="auto" if colour else None,
            highlight=False,
            markup=False,
            emoji=False,
            width=self.width or (None if colour else 200),
            soft_wrap=True,
        )
        self._render(plan, console)

    def _render(self, plan: Plan, console: Console) -> None:
        scope = f" (sites: {', '.join(plan.sites)})" if plan.sites is not None else ""
        console.print(
            Text(
                f"casdesired plan for {clean(plan.organisation)} at {clean(plan.endpoint)}{scope}",
                style="bold",
            )
        )
        console.print()
        if plan.changes:
            console.print(Text("Changes, in the order they run:", style="bold"))
            for change in plan.changes:
                console.print(self._change(change))
        else:
            blocked = bool(plan.withheld or plan.blocking_findings)
            console.print(Text(plan.no_changes_message, style="bold red" if blocked else "green"))
        if plan.safety or plan.needs_force:
            console.print()
            console.print(Text("Safety notes (read before applying):", style="bold"))
            for reason in plan.needs_force:
                console.print(Text(f"  ! needs --force: {clean(reason)}", style="bold red"))
            # The Outlook profile warning is the same for every note: say it once, after them.
            suffix = f"; {OUTLOOK_PROFILE_WARNING}"
            for note in plan.safety:
                message = note.message.removesuffix(suffix)
                console.print(Text(f"  ! {clean(message)}", style="yellow"))
            if any(n.message.endswith(suffix) for n in plan.safety):
                console.print(
                    Text(f"    For these users, {OUTLOOK_PROFILE_WARNING}.", style="yellow")
                )
        if plan.diff_findings:
            console.print()
            console.print(Text("Findings:", style="bold"))
            for finding in plan.diff_findings:
                style = "bold red" if finding.blocking else "yellow"
                label = "BLOCKING" if finding.blocking else "warning"
                where = f"{clean(finding.location)}: " if finding.location else ""
                console.print(
                    Text(
                        f"  {label} [{clean(finding.rule)}] {where}{clean(finding.message)}",
                        style=style,
                    )
                )
        if plan.dns:
            console.print()
            console.print(Text("DNS (apart from the changes):", style="bold"))
            for dns_item in plan.dns:
                quiet = dns_item.severity.value == "warning" or plan.fixed_by_plan(dns_item)
                blocks = plan.blocks_apply(dns_item)
                style = "bold red" if blocks else ("yellow" if quiet else "red")
                where = f"{clean(dns_item.location)}: " if dns_item.location else ""
                line = f"  {plan.dns_label(dns_item)} [{clean(dns_item.rule)}] {where}"
                console.print(Text(line + clean(dns_item.message), style=style))
        if plan.withheld:
            console.print()
            console.print(Text("Withheld by blocking findings (not applied):", style="bold"))
            for change in plan.withheld:
                console.print(self._change(change, dim=True))
        if plan.unmanaged:
            console.print()
            counts = Counter(u.kind for u in plan.unmanaged)
            summary = ", ".join(f"{n:,} {kind}" for kind, n in sorted(counts.items()))
            console.print(Text(f"Unmanaged (never touched): {summary}", style="bold"))
            for item in plan.unmanaged[:UNMANAGED_LISTED]:
                site = f" [{clean(item.site)}]" if item.site else ""
                console.print(
                    Text(
                        f"  . {item.kind} {clean(item.identity)}{site}: {clean(item.detail)}",
                        style="dim",
                    )
                )
            if len(plan.unmanaged) > UNMANAGED_LISTED:
                console.print(
                    Text(f"  ... and {len(plan.unmanaged) - UNMANAGED_LISTED:,} more", style="dim")
                )
        console.print()
        console.print(Text(clean(plan.summary), style="bold"))

    @staticmethod
    def _change(change: Change, *, dim: bool = False) -> Text:
        style = "dim" if dim else _STYLE[change.action]
        text = Text(f"  {change.action.symbol} ", style=style)
        text.append(clean(change.describe()), style=style)
        text.append(f"  [{clean(change.site)}]", style="dim")
        return text

"""The drift renderers on a hand-built report: markup stays text, the issue body keeps its size."""

from __future__ import annotations

import io
from datetime import datetime, timezone

from casdesired.drift.attribution import Attribution, Status
from casdesired.drift.markdown import MarkdownRenderer
from casdesired.drift.render import TextRenderer
from casdesired.drift.report import AuditSummary, DriftItem, DriftReport, Window
from casdesired.drift.sources import AuditEntry

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
SUMMARY = AuditSummary(True, 90.0, 0, 0, False, 5000, None, None, 0, None, 0)


def report(count: int, name: str = "DB") -> DriftReport:
    entry = AuditEntry("contoso.local/Users/[bold]alice", "Set-MailboxDatabase",
                       (("Identity", name),), name, T0)
    items = tuple(
        DriftItem("binding", "HQ", f"{name}{n:05d}", f"database {name}{n:05d}", "rebind",
                  {"rpc_client_access_server": "a"}, {"rpc_client_access_server": "b"},
                  Attribution(Status.OUTSIDE, entry=entry))
        for n in range(count)
    )
    return DriftReport("contoso", "lab", None, T0, Window(T0, "--since"), items, (), SUMMARY,
                       ("CONTOSO\\casadmin",))


def test_text_shows_markup_as_typed() -> None:
    out = io.StringIO()
    TextRenderer(colour=True).render(report(1, "[red]x"), out)
    assert "contoso.local/Users/[bold]alice" in out.getvalue()
    assert "[red]x00000" in out.getvalue()


def test_an_issue_body_keeps_within_its_budget_and_says_how_many_it_left_out() -> None:
    out = io.StringIO()
    MarkdownRenderer(max_bytes=4000).render(report(1000), out)
    text = out.getvalue()
    assert len(text.encode()) < 6000
    kept = text.count("| database DB")
    assert 0 < kept < 1000
    assert f"… and {1000 - kept:,} more (all of them: casdesired drift --format json)" in text

"""The end-of-apply report (casdesired.apply.report), rendered from real changes and outcomes."""

from __future__ import annotations

import io
import shlex
from pathlib import Path

from casdesired.apply.execute import Execution, Outcome, Status
from casdesired.apply.report import RollbackResult, render
from casdesired.changes.types import BindingChange


def _binding(database: str) -> BindingChange:
    return BindingChange(site="HQ", database=database, before_target="hq-cas01.contoso.local",
                         target="outlook-hq.contoso.local", mailbox_count=3)


def _render(result: Execution, problems: list[str], rollback: RollbackResult) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    render(result, problems, rollback, out, err)
    return out.getvalue(), err.getvalue()


def test_names_and_error_texts_cannot_forge_report_lines_or_drive_the_terminal() -> None:
    hostile = "HQ-DB01\nApplied 9 of 9 change(s).\x1b[2J"
    result = Execution(
        [Outcome(_binding(hostile), Status.FAILED, "refused\n  applied: everything\x1b[31m",
                 "DNS server said")],
        stopped=f"rebind database {hostile} failed",
    )
    out, err = _render(result, [], RollbackResult(None, Path("/org")))
    assert "\x1b" not in out and "\nApplied 9" not in out and "\n  applied: everything" not in out
    lines = out.splitlines()
    assert lines[1] == "Applied 0 of 1 change(s)."
    assert lines[2].startswith("  failed: rebind database HQ-DB01\\nApplied 9")
    assert lines[3].startswith("      DNS server said: refused\\n")
    assert err == "casdesired: error: apply incomplete: 0 applied, 1 failed, 0 not attempted\n"


def test_the_rollback_line_is_a_command_that_survives_spaces_in_paths() -> None:
    result = Execution([Outcome(_binding("HQ-DB01"), Status.APPLIED)])
    rollback = RollbackResult(Path("/ci work/rollback plan.json"), Path("/ci work/my org"))
    out, err = _render(result, [], rollback)
    assert err == ""
    line = next(x for x in out.splitlines() if x.startswith("Rollback plan: "))
    command = line.split("(review: ", 1)[1].removesuffix(")")
    assert shlex.split(command) == [
        "casdesired", "apply", "/ci work/rollback plan.json", "--config", "/ci work/my org"
    ]
    assert "Verified: the live organisation shows every applied change." in out


def test_unknown_outcomes_verification_problems_and_rollback_notes_are_all_counted() -> None:
    result = Execution(
        [Outcome(_binding("HQ-DB01"), Status.APPLIED), Outcome(_binding("HQ-DB02"), Status.UNKNOWN),
         Outcome(_binding("HQ-DB03"))],
        stopped="the connection failed while batch 2 ran",
    )
    note = "the rollback plan leaves out 1 change(s) whose outcome is unknown"
    out, err = _render(result, ["HQ-DB01 still points at hq-cas01"],
                       RollbackResult(Path("/r.json"), Path("/org"), [note]))
    assert "  unknown: rebind database HQ-DB02" in out
    assert "  not attempted: rebind database HQ-DB03" in out
    assert "Verification: HQ-DB01 still points at hq-cas01" in out and "Verified" not in out
    assert f"Rollback: {note}." in out
    assert err == ("casdesired: error: apply incomplete: 1 applied, 0 failed, 1 not attempted, "
                   "1 unknown (connection lost), 1 verification problem(s)\n")

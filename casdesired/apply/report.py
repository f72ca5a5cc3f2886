"""What apply tells its operator when it is done: each change's result, where and why it stopped,
what verification found, and the rollback plan (or why there is none).

Every name and every error text from the other side (Exchange, the agent, a DNS server) is shown
escaped with :func:`casdesired.visible.clean`, as in the plan: a newline or an escape
sequence in a database name cannot forge report lines or drive the terminal.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from casdesired.apply import withheld as withholding
from casdesired.apply.execute import Execution, Status
from casdesired.apply.withheld import WithheldSite
from casdesired.visible import clean


def say(stream: TextIO, text: str) -> None:
    """One line, flushed at once (a pipeline's log shows it even if the job is killed next)."""
    stream.write(text + "\n")
    stream.flush()


@dataclass(frozen=True)
class RollbackResult:
    """The rollback plan written (``path``, None when none was) and what the report says of it."""

    path: Path | None
    organisation_dir: Path
    """The organisation directory the apply used: applying the rollback plan file needs it."""
    notes: list[str] = field(default_factory=list)


def review_command(rollback: RollbackResult) -> str:
    """The whole command that shows the rollback plan and asks, runnable from any directory."""
    assert rollback.path is not None
    return shlex.join([
        "casdesired", "apply", str(rollback.path.absolute()),
        "--config", str(rollback.organisation_dir.absolute()),
    ])


def render(
    result: Execution,
    problems: list[str],
    rollback: RollbackResult,
    out: TextIO,
    err: TextIO,
    withheld: Sequence[WithheldSite] = (),
) -> None:
    """The report on ``out``, ending with the sites blocking findings withheld; on ``err`` the
    one-line error when the apply is incomplete (withheld changes make it incomplete too)."""
    applied = result.by_status(Status.APPLIED)
    say(out, "")
    more = (f"; {withholding.count(list(withheld))} more withheld by blocking findings "
            "(listed below)" if withheld else "")
    say(out, f"Applied {len(applied)} of {len(result.outcomes)} change(s){more}.")
    for outcome in result.outcomes:
        line = f"  {outcome.status.value}: {clean(outcome.change.describe())}"
        if outcome.error:
            line += f"\n      {outcome.error_label}: {clean(outcome.error)}"
        say(out, line)
    if result.stopped:
        say(out, f"Stopped: {clean(result.stopped)}.")
    for problem in problems:
        say(out, f"Verification: {clean(problem)}")
    if not problems and applied:
        say(out, "Verified: the live organisation shows every applied change.")
    if rollback.path is not None:
        say(out, f"Rollback plan: {rollback.path} (review: {review_command(rollback)})")
    for note in rollback.notes:
        say(out, f"Rollback: {note}.")
    if withheld:
        say(out, "")
        for line in withholding.lines(list(withheld)):
            say(out, line)
    if not result.ok or problems or withheld:
        say(err, f"casdesired: error: {incomplete(result, problems, withheld)}")


def nothing_applied(withheld: Sequence[WithheldSite], out: TextIO, err: TextIO) -> None:
    """The report when blocking findings withheld every change: nothing ran, nothing passes."""
    say(out, "")
    say(out, "Nothing was applied: every change is withheld by blocking findings.")
    say(out, "")
    for line in withholding.lines(list(withheld)):
        say(out, line)
    say(err, f"casdesired: error: apply incomplete: nothing applied, "
             f"{withholding.summary(list(withheld))}")


def incomplete(
    result: Execution, problems: list[str], withheld: Sequence[WithheldSite] = ()
) -> str:
    """``apply incomplete: 3 applied, 1 failed, ...`` — the counts a pipeline log needs."""
    counts = [
        f"{len(result.by_status(Status.APPLIED))} applied",
        f"{len(result.by_status(Status.FAILED))} failed",
        f"{len(result.by_status(Status.NOT_ATTEMPTED))} not attempted",
    ]
    unknown = len(result.by_status(Status.UNKNOWN))
    if unknown:
        counts.append(f"{unknown} unknown (connection lost)")
    if problems:
        counts.append(f"{len(problems)} verification problem(s)")
    if withheld:
        counts.append(withholding.summary(list(withheld)))
    return "apply incomplete: " + ", ".join(counts)

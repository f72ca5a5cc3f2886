"""The fault matrix of issue 9, "Nothing lost, nothing locked, nothing leaked", one cell each.

Every WS-Man operation (Create, Command, Send, Receive, Signal, Delete) x every wire fault the
lab injects (HTTP 500, WS-Man fault, dropped connection, a hang past the read timeout, 401) x
every phase of a run: a plan's read; an apply's lock-and-read, a write batch, and its
verify-and-release. A cell runs the real CLI against the lab with ONE fault, aimed at one
command execution of the run (``WireFault.after`` lets that operation of the executions before
it through; a Receive, see below), and asserts:

- the exit code docs/plan.md and docs/apply.md document;
- one clear message naming the step and the fault, never a traceback;
- the report equals the lab's journal: a change called applied ran (its cmdlets are journaled
  ok), one called not attempted did not, an unknown one is whatever the journal shows, and so
  is the audit log;
- the lock is where the message says: released / not held -> ``casdesired unlock`` shows none;
  kept -> it is held, and the command the warning prints breaks it;
- no shell left open (``lab.open_shells == 0``), or, where a hang leaves one, that WinRM's
  IdleTimeout closes it;
- a re-run converges: the next plan shows exactly what did not run, an apply of it succeeds,
  and a final plan shows "No changes".

What each operation's fault means (the lab injects a fault instead of carrying the operation
out, as a proxy or a restarted WinRM service does):

- Create, Command: nothing of that execution ran (the agent and its request travel on stdin).
- Send: the agent never got its input, but the client cannot know how much of it arrived, so
  a write batch is ``unknown`` and its lock kept.
- Receive: the agent was running on the endpoint; only its answer is lost. The client then
  deletes the shell, which kills the run at its next step, as on Windows. A gate holds that
  abandoned run at a known cmdlet until the client is done (a slow endpoint), so every cell
  sees one order: the client finishes (its release, its report), the held cmdlet finishes,
  nothing after it runs, then the cell checks. The Receive's fault is aimed once the run is
  at the gate; the Receive then waiting gets "no output yet" after the 1 s OperationTimeout,
  and the next one is hit.
- Signal, Delete: closing the shell. The run's outcome is the fault-free one. A hang there is
  given up after one bounded wait (a host that does not answer would not answer a new
  connection either, and casdesired's exit must not wait on it): the shell stays open until
  WinRM's IdleTimeout, and the one warning line says so. Those cells assert exactly that
  shell and that line, and that the lab's IdleTimeout closes it (its clock moved on).

Executions of the example (8 changes; CASDESIRED_MAX_BATCH=3 makes batches of 3, 3 and 2): a
plan is 1 read + 2 mailbox count; an apply is 1 lock-and-read, 2 mailbox count, 3-5 the batches,
6 verify-and-release (the mailbox count is a read under the lock, like the lock-and-read, and
has no column of its own). Receive and hang cells run with a 1 s OperationTimeout and a 1.5 s
read timeout (the lab answers a Receive with no output yet at 1 s), the others with 10 s / 20 s.
"""

from __future__ import annotations

import itertools
import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from apply.labenv import SECRET
from apply.matrixlab import (
    GATE,
    TIMEOUT,
    Matrix,
    arm,
    cli,
    lock_statement,
    ran,
    report,
    shared_lab,
    wait_until,
)
from casdesired.lab.faults import WIRE_FAULT_KINDS
from casdesired.lab.wsman import shells
from casdesired.plan.plan import Plan
from casdesired.transport import winrm

OPERATIONS = ("Create", "Command", "Send", "Receive", "Signal", "Delete")
KINDS = ("http500", "wsman_fault", "drop", "hang", "401")
NOT_STARTED = ("Create", "Command")
CLEANUP = ("Signal", "Delete")

STEP = {
    "Create": "while opening a shell",
    "Command": "while starting the agent",
    "Send": "while sending the request",
    "Receive": "while reading the agent's output",
}
SAYS = {
    "http500": "answered HTTP 500",
    "wsman_fault": "(WSManFault code 2150858770,",
    "drop": "was closed without an answer",
    "hang": "sent no answer within 1.5 s",
    "401": "refused the request with HTTP 401",
}
SHELL_OPEN = (
    "casdesired: warning: the shell casdesired opened on 127.0.0.1 could not be closed (no answer "
    "within 1.5 s); WinRM closes it after its idle timeout (Shell IdleTimeout), and until then it "
    "counts against the account's limit of concurrent shells (MaxShellsPerUser)"
)


@dataclass(frozen=True)
class Phase:
    name: str
    execution: int
    """The command execution of the run the fault is aimed at (1-based)."""
    gate: dict[str, object]
    """The cmdlet of that execution where a Receive cell holds the abandoned run."""

    @property
    def applies(self) -> bool:
        return self.name != "plan"


PHASES = (
    Phase("plan", 1, {"cmdlet": "Get-MailboxDatabase"}),
    # After Enter-CasdesiredLock: the lost answer's request had taken the lock.
    Phase("apply-lock-read", 1, {"cmdlet": "Get-MailboxDatabase"}),
    # Batch 2 of 3, after its first rebinding (BR-DB01) and before the two others.
    Phase("apply-write-batch", 4,
          {"cmdlet": "Set-MailboxDatabase", "identity": "BR-DB02"}),
    # The second read of the apply, before the Exit-CasdesiredLock of the same request.
    Phase("apply-verify-release", 6, {"cmdlet": "Get-MailboxDatabase", "after": 1}),
)


@dataclass(frozen=True)
class Expected:
    code: int
    lock: str | None
    """What the run says of the lock: "released", "not held", "kept", or nothing (None)."""
    statuses: tuple[str, ...] | None
    """The report's result of each change (None: the apply stopped before it had a plan)."""
    ran: tuple[bool, ...]
    """Per change, what the lab's journal shows ran (and the next plan leaves out)."""
    shell_left_open: bool = False
    error_in: str = "error"
    """Where the fault is described: the ``error`` line, or the report's ``Stopped`` or
    ``Verification`` line (the error line then has the counts)."""
    counts: str = ""


def expected(phase: Phase, action: str, kind: str) -> Expected:
    """What docs/apply.md promises for this cell (the module's doc says why, per operation)."""
    everything = (True,) * 8
    nothing = (False,) * 8
    if action in CLEANUP:
        # Closing the shell: the outcome of a run without a fault; a hang leaves the shell.
        ran = everything if phase.applies else nothing
        statuses = ("applied",) * 8 if phase.applies else None
        return Expected(0, None, statuses, ran, shell_left_open=kind == "hang", error_in="")
    if phase.name == "plan":
        return Expected(1, None, None, nothing)
    if phase.name == "apply-lock-read":
        # Nothing to say when the agent never started. A lost answer is released: "released"
        # after a Receive (Enter had run), "not held" after a Send (the agent never got its
        # request; the release ends the id, so no late Enter can take it).
        lock = None if action in NOT_STARTED else "not held" if action == "Send" else "released"
        return Expected(1, lock, None, nothing)
    if phase.name == "apply-write-batch":
        # Batch 1 applied, batch 3 not attempted. Batch 2 not attempted when it could not
        # start (lock released), else unknown (lock kept). After a Send nothing of it ran;
        # after a Receive, BR-DB01 and the held BR-DB02, and the Delete killed it before BR-DB03.
        second = "not attempted" if action in NOT_STARTED else "unknown"
        statuses = ("applied",) * 3 + (second,) * 3 + ("not attempted",) * 2
        lost = action == "Receive"
        ran = (True,) * 3 + (lost, lost, False) + (False,) * 2
        if action in NOT_STARTED:
            return Expected(1, "released", statuses, ran, error_in="Stopped",
                            counts="3 applied, 0 failed, 5 not attempted")
        return Expected(1, "kept", statuses, ran, error_in="Stopped",
                        counts="3 applied, 0 failed, 2 not attempted, 3 unknown (connection lost)")
    # Verify-and-release: every change applied, but not verified; the lock released on its own.
    return Expected(1, "released", ("applied",) * 8, everything, error_in="Verification",
                    counts="8 applied, 0 failed, 0 not attempted, 1 verification problem(s)")


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    with shared_lab(tmp_path_factory.mktemp("matrix")) as shared:
        # The batches and the phases' gates are made for this plan.
        assert len(shared.changes) == 8
        assert [c.describe().split(":")[0] for c in shared.changes[3:6]] == [
            "rebind database BR-DB01", "rebind database BR-DB02", "rebind database BR-DB03"
        ]
        yield shared


CELLS = [
    pytest.param(phase, action, kind, id=f"{phase.name}-{action}-{kind}")
    for phase, action, kind in itertools.product(PHASES, OPERATIONS, KINDS)
]


@dataclass
class Run:
    """What one cell's faulted run printed and left behind."""

    phase: Phase
    action: str
    kind: str
    expect: Expected
    code: int
    out: str
    err: str
    audit: Path


@pytest.mark.parametrize(("phase", "action", "kind"), CELLS)
def test_fault_matrix(
    matrix: Matrix,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    phase: Phase,
    action: str,
    kind: str,
) -> None:
    matrix.reset()
    if kind == "hang" or action == "Receive":
        matrix.configure(1)
        monkeypatch.setattr(winrm, "READ_TIMEOUT_MARGIN_SECONDS", 0.5)
    else:
        matrix.configure(10)
    audit = matrix.root / f"{phase.name}-{action}-{kind}.jsonl"
    org = str(matrix.org_dir)
    command = ["plan", org] if not phase.applies else [
        "apply", org, "--auto-approve", "--force", "--audit-log", str(audit)
    ]
    helper = arm(matrix, action, kind, phase.execution, phase.gate)
    abandoned = False
    try:
        code, out, err = cli(capsys, *command)
    finally:
        if helper is not None:
            helper.join(TIMEOUT)
        if action == "Receive":
            # The run whose answer was lost is still held at its gate: it really was on its
            # way, and it goes on only now, after the client is done.
            abandoned = matrix.lab.faults.gate(GATE).reached and not matrix.idle()
        matrix.lab.faults.clear()  # opens the gate
        wait_until(matrix.idle, "the lab's commands to end")
    assert abandoned or action != "Receive"
    run = Run(phase, action, kind, expected(phase, action, kind), code, out, err, audit)

    _the_fault_hit_its_execution(matrix, run)
    _exit_code_and_one_clear_message(run)
    _the_report_equals_the_journal(matrix, run)
    _the_lock_is_where_the_message_says(matrix, run, capsys)
    assert matrix.lab.open_shells == (1 if run.expect.shell_left_open else 0)
    _a_rerun_converges(matrix, run, capsys)
    if run.expect.shell_left_open:
        _idle_timeout_closes_what_was_left(matrix, run, monkeypatch)


def _the_fault_hit_its_execution(matrix: Matrix, run: Run) -> None:
    wsman = matrix.lab.journal.entries(["wsman"])
    faulted = [e for e in wsman if e.get("fault")]
    assert [(e["action"], e["fault"]) for e in faulted] == [(run.action, run.kind)]
    started = [e for e in wsman if e["action"] == "Command" and e.get("status") == 200
               and int(e["seq"]) < int(faulted[0]["seq"])]
    assert len(started) == run.phase.execution - (run.action in NOT_STARTED), "aimed elsewhere"


def _exit_code_and_one_clear_message(run: Run) -> None:
    expect, out = run.expect, run.out
    assert run.code == expect.code, out + run.err
    assert SECRET not in out + run.err
    lines = run.err.splitlines()
    errors = [line for line in lines if line.startswith("casdesired: error: ")]
    locks = [line for line in lines if lock_statement(line)]
    shells = [line for line in lines if "could not be closed" in line]
    assert len(errors) + len(locks) + len(shells) == len(lines), run.err
    assert shells == ([SHELL_OPEN] if expect.shell_left_open else [])
    assert len(errors) == (1 if expect.code else 0), run.err
    if expect.code:
        assert lines[-1] == errors[0], "the error comes last, after where the lock stands"
    if expect.error_in == "error":
        assert out == "", "a run that failed before it had a plan shows none"
        assert STEP[run.action] in errors[0] and SAYS[run.kind] in errors[0], errors[0]
    elif expect.error_in:
        (detail,) = [line for line in out.splitlines() if line.startswith(expect.error_in)]
        assert STEP[run.action] in detail and SAYS[run.kind] in detail, detail
        assert errors[0] == f"casdesired: error: apply incomplete: {expect.counts}"
    elif run.phase.applies:
        assert "Applied 8 of 8 change(s)." in out
        assert "Verified: the live organisation shows every applied change." in out
    else:
        assert "Plan: 2 to create, 6 to change, 0 to destroy; 573 mailboxes affected" in out


def _the_report_equals_the_journal(matrix: Matrix, run: Run) -> None:
    journal = tuple(ran(matrix, change) for change in matrix.changes)
    assert journal == run.expect.ran
    lines = report(run.out)
    if run.expect.statuses is None:
        assert lines == []
        assert not run.audit.exists(), "no apply-started without a plan to apply"
        assert not [e for e in matrix.cmdlets() if e["cmdlet"] in (
            "Update-CasdesiredLock", "Register-CasdesiredPlan")]
    else:
        assert [d for _, d in lines] == [c.describe() for c in matrix.changes]
        assert tuple(s for s, _ in lines) == run.expect.statuses
        for (status, _), did in zip(lines, journal, strict=True):
            assert status not in ("applied", "not attempted") or did == (status == "applied")
        finished = json.loads(run.audit.read_text().splitlines()[-1])
        assert tuple(c["result"] for c in finished["changes"]) == run.expect.statuses
        assert finished["exit_code"] == run.code
        assert finished["lock_kept"] is (run.expect.lock == "kept")
    if not run.phase.applies:
        assert not [e for e in matrix.cmdlets() if "Casdesired" in str(e["cmdlet"])]


def _the_lock_is_where_the_message_says(
    matrix: Matrix, run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    org = str(matrix.org_dir)
    statements = [s for s in map(lock_statement, run.err.splitlines()) if s]
    assert [name for name, _, _ in statements] == ([run.expect.lock] if run.expect.lock else [])
    entered = [e for e in matrix.cmdlets() if e["cmdlet"] == "Enter-CasdesiredLock"]
    if not statements:
        # Said nothing: it never took the lock, or released it with a verified apply.
        assert not run.expect.code or not any(e["ok"] for e in entered)
    for name, lock_id, unlock in statements:
        mine = [e for e in entered if e["parameters"]["LockId"] == lock_id]  # type: ignore[index]
        if name == "released":
            assert any(e["ok"] for e in mine), "released a lock it never took"
        elif name == "not held":
            assert not any(e["ok"] for e in mine), "a late request took the lock"
        else:
            code, held, _ = cli(capsys, "unlock", "--config", org)
            assert code == 0 and held.startswith(f"Held: lock {lock_id} held by "), held
            assert unlock is not None
            code, removed, _ = cli(capsys, *shlex.split(unlock)[1:])
            assert code == 0 and removed.startswith(f"Removed lock {lock_id} "), removed
    code, shown, _ = cli(capsys, "unlock", "--config", org)
    assert (code, shown) == (0, "No lock is held.\n")


def _a_rerun_converges(matrix: Matrix, run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """The next plan is exactly what did not run; applying it converges."""
    org = str(matrix.org_dir)
    remainder = [c for c, did in zip(matrix.changes, run.expect.ran, strict=True) if not did]
    saved = matrix.root / "remainder.json"
    code, out, err = cli(capsys, "plan", org, "--out", str(saved))
    assert code == 0, err
    assert [c.describe() for c in Plan.load(saved).changes] == [c.describe() for c in remainder]
    if remainder:
        code, out, err = cli(capsys, "apply", org, "--auto-approve", "--force",
                             "--audit-log", str(run.audit))
        assert code == 0, out + err
        assert f"Applied {len(remainder)} of {len(remainder)} change(s)." in out
        code, out, err = cli(capsys, "plan", org)
        assert code == 0, err
    assert "No changes." in out
    assert matrix.lab.open_shells == (1 if run.expect.shell_left_open else 0)


def _idle_timeout_closes_what_was_left(
    matrix: Matrix, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warning's promise: WinRM closes the shell after its IdleTimeout, freeing the quota."""
    (left,) = matrix.open_shell_ids()
    later = shells.idle_clock() + matrix.lab.limits.idle_timeout_seconds + 1
    monkeypatch.setattr(shells, "idle_clock", lambda: later)
    assert matrix.lab.open_shells == 0
    closed = matrix.lab.journal.entries(["shell"])
    assert [(e["shell_id"], e["closed"]) for e in closed] == [(left, "idle timeout")]


def test_the_matrix_covers_every_operation_fault_and_phase() -> None:
    # A fault kind the lab learns must join the matrix.
    assert set(KINDS) == set(WIRE_FAULT_KINDS)
    assert len({p.id for p in CELLS}) == len(OPERATIONS) * len(KINDS) * len(PHASES) == 120

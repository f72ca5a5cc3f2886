"""The connection breaks while a write batch runs: the report says UNKNOWN, never a guess.

With ``CASDESIRED_MAX_BATCH=3`` the example's 8 changes run as batches of 3, 3, 2; batch 2 is
the rebinding of BR-DB01, BR-DB02 and BR-DB03. A wire fault hits batch 2:

- on its *Command* (the agent never starts: nothing of batch 2 runs), or
- on a *Receive* while it runs, held at BR-DB02: casdesired then closes the shell on a fresh
  connection, which kills the agent, as deleting a shell kills its process on Windows. The
  invocation under way (BR-DB02) finishes; BR-DB03 never starts: the batch is cut part-way.

Either way casdesired cannot know how far it got, so batch 2 is ``unknown``, batch 3 ``not
attempted``; the lab's journal shows what really ran, and the next plan shows exactly the
remainder.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest

from apply.labenv import Env, cli
from casdesired.apply.execute import MAX_BATCH_ENV
from casdesired.plan.plan import Plan
from casdesired.transport import winrm

GATE = "batch-2-in-flight"
TIMEOUT = 30.0
COMMANDS_BEFORE_BATCH_2 = 2
"""The journal of a fault-free run: one Command for lock-and-read, one per batch after it."""


@pytest.fixture
def quick(env: Env, monkeypatch: pytest.MonkeyPatch) -> Env:
    """Batches of 3; a 1 s WS-Man operation timeout, so a long-poll Receive comes round again
    while a batch is held, and a hung request is given up after 2 s instead of 130 s."""
    org = env.org_dir / "organisation.yaml"
    text = org.read_text()
    assert "operation_seconds: 120" in text
    org.write_text(text.replace("operation_seconds: 120", "operation_seconds: 1"))
    monkeypatch.setattr(winrm, "READ_TIMEOUT_MARGIN_SECONDS", 1.0)
    monkeypatch.setenv(MAX_BATCH_ENV, "3")
    return env


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _fault_a_receive_of_batch_2(env: Env, kind: str) -> threading.Thread:
    """Hold batch 2 at BR-DB02, break the next Receive, then let the batch go on."""
    env.lab.faults.update({"cmdlets": [
        {"cmdlet": "Set-MailboxDatabase", "identity": "BR-DB02", "fail": False, "gate": GATE}
    ]})
    gate = env.lab.faults.gate(GATE)

    def hit() -> bool:
        return any(e.get("fault") == kind for e in env.lab.journal.entries(["wsman"]))

    def closed_after_the_fault() -> bool:
        entries = env.lab.journal.entries(["wsman"])
        faulted = [int(e["seq"]) for e in entries if e.get("fault") == kind]
        return bool(faulted) and any(
            e["action"] == "Delete" and e.get("status") == 200 and int(e["seq"]) > faulted[0]
            for e in entries
        )

    def orchestrate() -> None:
        try:
            if gate.wait_reached(TIMEOUT):
                env.lab.faults.update({"wire": [{"kind": kind, "action": "Receive"}]})
                _wait_until(hit, f"a {kind} Receive")
                # casdesired closes the broken run's shell on a fresh connection: the agent is
                # killed while BR-DB02 is under way.
                _wait_until(closed_after_the_fault, "the client to close the batch's shell")
        finally:
            gate.open()

    thread = threading.Thread(target=orchestrate)
    thread.start()
    return thread


def _set_mailbox_database(env: Env) -> list[str]:
    return [
        str(e["parameters"]["Identity"])
        for e in env.cmdlets()
        if e["cmdlet"] == "Set-MailboxDatabase"
    ]


def _agent_killed(env: Env) -> bool:
    return any(e["outcome"] == "killed" for e in env.lab.journal.entries(["process"]))


@pytest.mark.parametrize("kind", ["drop", "hang"])
@pytest.mark.parametrize("action", ["Command", "Receive"])
def test_a_broken_connection_mid_batch_reports_unknown_and_the_next_plan_is_the_remainder(
    quick: Env, capsys: pytest.CaptureFixture[str], kind: str, action: str
) -> None:
    env = quick
    saved = env.tmp / "before.json"
    assert cli(capsys, "plan", str(env.org_dir), "--out", str(saved))[0] == 0
    changes = Plan.load(saved).changes
    mark = int(env.lab.journal.entries()[-1]["seq"])
    helper: threading.Thread | None = None
    if action == "Command":
        env.lab.faults.update({"wire": [
            {"kind": kind, "action": "Command", "after": COMMANDS_BEFORE_BATCH_2}
        ]})
    else:
        helper = _fault_a_receive_of_batch_2(env, kind)
    try:
        code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                             "--audit-log", str(env.audit))
    finally:
        if helper is not None:
            helper.join(TIMEOUT)
        env.lab.faults.clear()

    assert code == 1, err
    assert "Traceback" not in err
    assert "Applied 3 of 8 change(s)." in out
    for change in changes[:3]:
        assert f"applied: {change.describe()}" in out
    for change in changes[3:6]:
        assert f"unknown: {change.describe()}" in out
    for change in changes[6:]:
        assert f"not attempted: {change.describe()}" in out
    assert "Stopped: the connection failed while batch 2 ran (" in out
    assert "may or may not have been made: make a new plan to see what remains" in out
    assert "3 applied, 0 failed, 2 not attempted, 3 unknown (connection lost)" in err
    finished = json.loads(env.audit.read_text().splitlines()[-1])
    assert [c["result"] for c in finished["changes"]] == (
        ["applied"] * 3 + ["unknown"] * 3 + ["not attempted"] * 2
    )

    # What really happened, from the lab's journal.
    faulted = [e for e in env.lab.journal.entries(["wsman"]) if e.get("fault")]
    assert [(e["action"], e["fault"]) for e in faulted] == [(action, kind)]
    commands = [
        e for e in env.lab.journal.entries(["wsman"])
        if e["action"] == "Command" and mark < int(e["seq"]) < int(faulted[0]["seq"])
    ]
    if action == "Command":
        # The agent never started for batch 2: no lease renewal, no write of it.
        assert len(commands) == COMMANDS_BEFORE_BATCH_2
        ran: list[str] = []
        renewals = 1
    else:
        # Killed with its shell: BR-DB02, under way, finished; BR-DB03 and batch 3 never ran.
        _wait_until(lambda: _agent_killed(env), "the batch's agent to be killed")
        ran = ["BR-DB01", "BR-DB02"]
        renewals = 2
    assert _set_mailbox_database(env) == ran
    assert len([e for e in env.cmdlets(mark) if e["cmdlet"] == "Update-CasdesiredLock"]) == renewals
    # The lost batch may still be running on a real server: the lock is kept (its lease ends it),
    # the operator is told, and `unlock` clears it after checking.
    lock_id = finished["lock_id"]
    assert finished["lock_kept"] is True
    assert f"lock {lock_id} is kept" in err and f"casdesired unlock {lock_id}" in err
    assert env.current_lock() is not None
    code, _, unlock_err = cli(capsys, "unlock", lock_id, "--config", str(env.org_dir))
    assert code == 0, unlock_err
    assert env.current_lock() is None

    code, out, _ = cli(capsys, "plan", str(env.org_dir))
    remainder = [line.strip() for line in out.splitlines() if line.strip()[:2] in ("+ ", "~ ")]
    still = [c for c in changes[3:] if c.invocations()[0].parameters["Identity"] not in ran]
    assert len(remainder) == len(still) == 5 - len(ran)
    for line, change in zip(remainder, still, strict=True):
        assert change.describe().split(" (")[0] in line

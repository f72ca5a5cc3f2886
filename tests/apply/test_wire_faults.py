"""The connection breaks around a write batch: the report says what is known, never a guess.

With ``CASDESIRED_MAX_BATCH=3`` the example's 8 changes run as batches of 3, 3, 2; batch 2 is
the rebinding of BR-DB01, BR-DB02 and BR-DB03. A wire fault hits batch 2:

- on a *Receive* while it runs, held at BR-DB02: casdesired then closes the shell on a fresh
  connection, which kills the agent, as deleting a shell kills its process on Windows. The
  invocation under way (BR-DB02) finishes; BR-DB03 never starts: the batch is cut part-way.
  casdesired cannot know how far it got, so batch 2 is ``unknown`` and the lock is kept;
- on its *Create* or *Command* (the agent and its request travel on stdin, none of which was
  sent: nothing of batch 2 runs). Batch 2 is ``not attempted`` like batch 3, and the lock is
  released: nothing of this apply can still be running.

The lab's journal shows what really ran, and the next plan shows exactly the remainder.
"""

from __future__ import annotations

import json
import shlex
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
COMMANDS_BEFORE_BATCH_2 = 3
"""The journal of a fault-free run: one Command for lock-and-read, one to count the mailboxes
of the databases the plan rebinds, then one per batch."""


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
@pytest.mark.parametrize("action", ["Receive"])
def test_a_broken_connection_mid_batch_reports_unknown_and_the_next_plan_is_the_remainder(
    quick: Env, capsys: pytest.CaptureFixture[str], kind: str, action: str
) -> None:
    env = quick
    saved = env.tmp / "before.json"
    assert cli(capsys, "plan", str(env.org_dir), "--out", str(saved))[0] == 0
    changes = Plan.load(saved).changes
    mark = int(env.lab.journal.entries()[-1]["seq"])
    helper = _fault_a_receive_of_batch_2(env, kind)
    try:
        code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                             "--audit-log", str(env.audit))
    finally:
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
    assert len(commands) == COMMANDS_BEFORE_BATCH_2 + 1  # batch 2's own Command started
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


@pytest.mark.parametrize(("action", "kind"), [
    ("Command", "drop"), ("Command", "hang"), ("Create", "http500"), ("Create", "drop"),
])
def test_a_batch_that_could_not_start_is_not_attempted_and_the_lock_is_released(
    quick: Env, capsys: pytest.CaptureFixture[str], action: str, kind: str
) -> None:
    env = quick
    saved = env.tmp / "before.json"
    assert cli(capsys, "plan", str(env.org_dir), "--out", str(saved))[0] == 0
    changes = Plan.load(saved).changes
    mark = int(env.lab.journal.entries()[-1]["seq"])
    # One shell and one command per execution: lock-and-read, batch 1, then batch 2's.
    env.lab.faults.update({"wire": [
        {"kind": kind, "action": action, "after": COMMANDS_BEFORE_BATCH_2}
    ]})
    try:
        code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                             "--audit-log", str(env.audit))
    finally:
        env.lab.faults.clear()

    assert code == 1, err
    assert "Traceback" not in err
    assert "Applied 3 of 8 change(s)." in out
    for change in changes[3:]:
        assert f"not attempted: {change.describe()}" in out
    assert "unknown:" not in out
    assert "Stopped: batch 2 could not be started (" in out
    assert "none of its changes was made" in out
    assert "3 applied, 0 failed, 5 not attempted" in err
    assert "kept" not in err  # no lock left behind on purpose
    finished = json.loads(env.audit.read_text().splitlines()[-1])
    assert [c["result"] for c in finished["changes"]] == ["applied"] * 3 + ["not attempted"] * 5
    assert finished["lock_kept"] is False
    # Nothing of batch 2 reached Exchange, and the lock was released with the verifying read.
    assert _set_mailbox_database(env) == []
    renewals = [e for e in env.cmdlets(mark) if e["cmdlet"] == "Update-CasdesiredLock"]
    assert len(renewals) == 1  # batch 1's only
    assert env.current_lock() is None

    # The next apply is not refused as locked: it applies exactly the remainder.
    code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                         "--audit-log", str(env.audit))
    assert code == 0, err
    assert "Applied 5 of 5 change(s)." in out


def _drop_a_receive_while_held(
    env: Env, cmdlet: str, gate_name: str, *also: dict[str, object], until_release: bool = False
) -> threading.Thread:
    """Hold the first ``cmdlet`` at a gate, drop the next Receive (and arm ``also``, wire
    faults counted from then on), then let the command go on — with ``until_release``, only
    once the apply's release (Exit-CasdesiredLock) has run."""
    env.lab.faults.update({"cmdlets": [{"cmdlet": cmdlet, "fail": False, "gate": gate_name}]})
    gate = env.lab.faults.gate(gate_name)

    def dropped() -> bool:
        return any(e.get("fault") == "drop" for e in env.lab.journal.entries(["wsman"]))

    def released() -> bool:
        return any(e["cmdlet"] == "Exit-CasdesiredLock" for e in env.cmdlets())

    def orchestrate() -> None:
        try:
            if gate.wait_reached(TIMEOUT):
                env.lab.faults.update({"wire": [{"kind": "drop", "action": "Receive"}, *also]})
                _wait_until(dropped, "a dropped Receive")
                if until_release:
                    _wait_until(released, "the apply's release")
        finally:
            gate.open()

    thread = threading.Thread(target=orchestrate)
    thread.start()
    return thread


def _enter_attempts(env: Env) -> list[dict[str, object]]:
    return [e for e in env.cmdlets() if e["cmdlet"] == "Enter-CasdesiredLock"]


def test_a_lost_answer_to_the_lock_and_read_releases_the_lock_it_took(
    quick: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env = quick
    # The lock is taken (Enter runs first), then the read is held while the answer is lost.
    helper = _drop_a_receive_while_held(env, "Get-MailboxDatabase", "read-in-flight")
    try:
        code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                             "--audit-log", str(env.audit))
    finally:
        helper.join(TIMEOUT)
        env.lab.faults.clear()
    assert code == 1
    assert "Traceback" not in err
    assert "closed without an answer while reading the agent's output" in err
    (entered,) = _enter_attempts(env)
    lock_id = str(entered["parameters"]["LockId"])  # type: ignore[index]
    assert entered["ok"] is True  # the failed apply really had taken the lock
    assert (f"casdesired: released lock {lock_id}: this apply does not hold the organisation "
            "lock any more") in err
    assert env.current_lock() is None
    # The next apply is not refused as "locked by" for a whole lease.
    code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                         "--audit-log", str(env.audit))
    assert code == 0, err
    assert "Applied 8 of 8 change(s)." in out


def test_a_lost_answer_whose_lock_request_runs_late_cannot_lock_the_organisation(
    quick: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env = quick
    # The answer is lost BEFORE the agent took the lock (Enter held at a gate): the apply's
    # release finds no lock of its own; the Enter that runs afterwards must not take it.
    helper = _drop_a_receive_while_held(env, "Enter-CasdesiredLock", "enter-in-flight",
                                        until_release=True)
    try:
        code, _out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                              "--audit-log", str(env.audit))
    finally:
        helper.join(TIMEOUT)
        env.lab.faults.clear()
    assert code == 1
    assert "Traceback" not in err
    _wait_until(lambda: len(_enter_attempts(env)) == 1, "the late Enter-CasdesiredLock")
    (late,) = _enter_attempts(env)
    lock_id = str(late["parameters"]["LockId"])  # type: ignore[index]
    assert (f"casdesired: lock {lock_id} is not held: the organisation is not locked by this "
            "apply, and a late request of this apply can no longer lock it") in err
    assert late["ok"] is False
    assert f"lock {lock_id} was released or broken already" in str(late["error"])
    assert env.current_lock() is None
    code, _out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                          "--audit-log", str(env.audit))
    assert code == 0, err


def test_when_the_release_fails_too_the_exact_unlock_command_is_printed(
    quick: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env = quick
    # ...and the shell of the release request cannot be created either.
    helper = _drop_a_receive_while_held(env, "Get-MailboxDatabase", "read-in-flight",
                                        {"kind": "http500", "action": "Create"})
    try:
        code, _out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                              "--audit-log", str(env.audit))
    finally:
        helper.join(TIMEOUT)
        env.lab.faults.clear()
    assert code == 1
    held = env.current_lock()
    assert held is not None
    command = f"casdesired unlock {held.lock_id} --config {env.org_dir.absolute()}"
    assert (f"casdesired: warning: lock {held.lock_id} may still be held: releasing it "
            "failed (") in err
    assert f"to break it now: {command}" in err
    code, out, _ = cli(capsys, *shlex.split(command)[1:])
    assert code == 0 and f"Removed lock {held.lock_id}" in out
    assert env.current_lock() is None

"""The rollback plan only undoes what is known to have happened, pinned to a state that was read.

Through the real CLI, real pywinrm and the loopback lab.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from apply.labenv import Env, cli
from casdesired.apply.execute import MAX_BATCH_ENV
from casdesired.lab.faults import WireFault
from casdesired.plan.plan import Plan


def _finished(env: Env) -> dict[str, object]:
    entry = json.loads(env.audit.read_text().splitlines()[-1])
    assert entry["event"] == "apply-finished"
    return dict(entry)


def test_no_rollback_plan_is_written_when_the_state_after_the_apply_could_not_be_read(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every change applied, then the verification read fails: a rollback pinned to the state
    # before the apply would be refused as stale by construction, so none is written.
    env.lab.faults.update({"cmdlets": [{"cmdlet": "Get-MailboxDatabase", "after": 1}]})
    code, out, _err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                          "--audit-log", str(env.audit))
    assert code == 1
    assert "Applied 8 of 8 change(s)." in out
    assert ("Rollback: no rollback plan: the state after the apply could not be read; make a "
            "plan from the previous YAML.") in out
    assert "Rollback plan:" not in out
    assert list(env.tmp.glob("casdesired-rollback-*.json")) == []
    finished = _finished(env)
    assert finished["rollback"] is None
    assert finished["rollback_notes"] == [
        "no rollback plan: the state after the apply could not be read; make a plan from the "
        "previous YAML"
    ]


def test_changes_of_unknown_outcome_are_left_out_of_the_rollback_and_the_report_says_so(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of 3: the connection drops on batch 2's Receive (its agent did start: a drop on
    # its Command would leave them "not attempted"), so BR-DB01..03 are "unknown".
    monkeypatch.setenv(MAX_BATCH_ENV, "3")
    org = env.org_dir / "organisation.yaml"  # a long-poll Receive comes round within 1 s
    org.write_text(org.read_text().replace("operation_seconds: 120", "operation_seconds: 1"))
    saved = env.tmp / "before.json"
    assert cli(capsys, "plan", str(env.org_dir), "--out", str(saved))[0] == 0
    changes = Plan.load(saved).changes
    # Batch 2 is held at BR-DB02, so the Receive that drops is surely one of its own (however
    # many Receives the runs before it took); the client then closes the shell, which kills it.
    env.lab.faults.update({"cmdlets": [
        {"cmdlet": "Set-MailboxDatabase", "identity": "BR-DB02", "fail": False, "gate": "held"}
    ]})
    gate = env.lab.faults.gate("held")

    def aim() -> None:
        try:
            if gate.wait_reached(30):
                env.lab.faults.wire.append(WireFault("drop", action="Receive"))
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and not any(
                    e.get("fault") == "drop" for e in env.lab.journal.entries(["wsman"])
                ):
                    time.sleep(0.02)
        finally:
            gate.open()

    helper = threading.Thread(target=aim)
    helper.start()
    try:
        code, out, _err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                              "--audit-log", str(env.audit))
    finally:
        helper.join(30)
        env.lab.faults.clear()
    assert code == 1
    assert [f"unknown: {c.describe()}" in out for c in changes[3:6]] == [True] * 3
    assert ("Rollback: the rollback plan leaves out 3 change(s) whose outcome is unknown (the "
            "connection broke while they ran); the next plan shows what happened.") in out
    rollback = Plan.load(Path(str(_finished(env)["rollback"])))
    undone = [c.describe() for c in rollback.changes]
    assert len(undone) == 3  # the inverses of the three applied changes, nothing more
    assert not [d for d in undone if "rebind database" in d]
    assert {c.kind for c in rollback.changes} == {"array_delete", "nlb_node_remove",
                                                  "autodiscover"}


def test_a_rollback_plan_lists_what_apply_will_refuse_without_force_and_apply_agrees(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    # The example creates an array and rebinds 5 of 12 databases; its rollback deletes that
    # array and rebinds the 5 back: a delete and 41.7% of the databases, both above policy.
    code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                         "--audit-log", str(env.audit))
    assert code == 0, out + err
    path = Path(str(_finished(env)["rollback"]))
    rollback = Plan.load(path)
    assert [r.split(":")[0] for r in rollback.needs_force] == [
        "threshold max_rebind_percent", "deletes need --force"
    ]
    code, out, err = cli(capsys, "apply", str(path), "--config", str(env.org_dir),
                         "--auto-approve", "--audit-log", str(env.audit))
    assert code == 1
    for reason in rollback.needs_force:
        assert f"! needs --force: {reason}" in out  # the plan shown before the refusal
        assert reason in err  # the refusal says the same


def test_a_rollback_of_an_fqdn_change_warns_about_the_outlook_profiles_it_moves(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    hq = env.org_dir / "hq.yaml"
    hq.write_text(hq.read_text().replace("fqdn: outlook-hq.contoso.local",
                                         "fqdn: rpc-hq.contoso.local"))
    code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                         "--site", "HQ", "--audit-log", str(env.audit))
    assert code == 0, out + err
    rollback = Plan.load(Path(str(_finished(env)["rollback"])))
    [rename] = [c for c in rollback.changes if c.kind == "array_update"]
    assert rename.describe() == (
        "update CAS array rpc-hq.contoso.local: FQDN rpc-hq.contoso.local -> "
        "outlook-hq.contoso.local"
    )
    [note] = [n for n in rollback.safety if n.change == "array_update:rpc-hq.contoso.local"]
    assert note.message.startswith(
        "the FQDN of array rpc-hq.contoso.local changes to outlook-hq.contoso.local while "
    )
    assert note.mailboxes > 0

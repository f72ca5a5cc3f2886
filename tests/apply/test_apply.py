"""casdesired apply through the real CLI, real pywinrm and the loopback lab."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apply.labenv import SECRET, Env, cli
from casdesired.agent.protocol import is_fenced
from casdesired.apply import lock as locking
from casdesired.lab.exchange.locks import LOCK_PATH
from casdesired.plan.plan import Plan

CHANGES = [
    "create CAS array outlook-branch.contoso.local",
    "add HQ-CAS02 to the NLB cluster",
    "update Autodiscover of HQ-CAS02",
    "rebind database BR-DB01",
    "rebind database BR-DB02",
    "rebind database BR-DB03",
    "rebind database HQ-DB05",
    "rebind database HQ-DB06",
]


def managed(env: Env) -> dict[str, object]:
    """What casdesired manages in the lab's state (lock files left out)."""
    state = env.organisation.snapshot()
    return {k: state[k] for k in ("arrays", "databases", "nlb_clusters", "servers")}


@pytest.mark.parametrize("env", ["stdin", "file"], indirect=True)
def test_apply_converges_verifies_audits_and_the_rollback_restores_the_original(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    original = managed(env)
    code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                         "--audit-log", str(env.audit))
    assert code == 0, err
    assert "Applied 8 of 8 change(s)." in out and "Verified:" in out
    code, out2, err = cli(capsys, "plan", str(env.org_dir), "--detailed-exitcode")
    assert code == 0 and "No changes." in out2
    assert env.current_lock() is None  # released
    lines = [json.loads(x) for x in env.audit.read_text().splitlines()]
    assert [e["event"] for e in lines] == ["apply-started", "apply-finished"]
    finished = lines[1]
    assert [c["result"] for c in finished["changes"]] == ["applied"] * 8
    assert finished["changes"][3]["before"] == {"rpc_client_access_server":
                                                "br-cas01.contoso.local"}
    assert finished["plan_hash"].startswith("sha256:") and finished["who"]
    assert SECRET not in env.audit.read_text() and SECRET not in out
    rollback = Path(finished["rollback"])
    assert rollback.exists()
    code, out, err = cli(capsys, "apply", str(rollback), "--config", str(env.org_dir),
                         "--auto-approve", "--force", "--audit-log", str(env.audit))
    assert code == 0, err
    assert "rebind database BR-DB01: outlook-branch.contoso.local -> br-cas01" in out
    assert managed(env) == original
    # Either delivery: one WinRM shell per agent run, every one closed.
    creates = [e for e in env.lab.journal.entries(["wsman"]) if e["action"] == "Create"]
    assert len(creates) == env.lab.journal.count("process") - _refused_runs(env)
    assert env.lab.open_shells == 0
    sends = [e for e in env.lab.journal.entries(["wsman"]) if e["action"] == "Send"]
    assert (sends == []) == (env.delivery == "file")  # the file delivery never uses stdin


def _refused_runs(env: Env) -> int:
    """Bootstraps that found no agent file (the file delivery's first run): they ran nothing,
    and the same run (and shell) then wrote the agent and ran its bootstrap again."""
    return sum(1 for e in env.lab.journal.entries(["process"]) if e.get("exit_code") == 4)


def test_no_terminal_without_auto_approve_refuses_before_connecting(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = cli(capsys, "apply", str(env.org_dir), "--force")
    assert code == 1 and "--auto-approve" in err
    assert env.lab.journal.count("command") == 0


def test_threshold_refusal_names_numbers_and_override_and_writes_nothing(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve")
    assert code == 1
    assert "max_rebind_percent" in err and "5 of 12" in err and "41.7%" in err
    assert "30%" in err and "--force" in err and "Traceback" not in err
    writes = [e for e in env.cmdlets() if is_fenced(str(e["cmdlet"]))]  # the writes
    assert writes == []
    assert env.current_lock() is None


def test_a_delete_needs_force(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force")[0] == 0
    hq = env.org_dir / "hq.yaml"
    hq.write_text(hq.read_text().replace("members: [HQ-CAS01, HQ-CAS02]", "members: [HQ-CAS01]")
                  .replace("prune: false", "prune: true"))
    org = env.org_dir / "organisation.yaml"
    org.write_text(org.read_text().replace("allow_prune: false", "allow_prune: true"))
    code, _, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve")
    assert code == 1 and "deletes need --force" in err and "drain and remove HQ-CAS02" in err
    env.organisation.configure(nlb_drain_seconds=0.2)
    code, _out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force")
    assert code == 0, err
    drained = [e["cmdlet"] for e in env.cmdlets() if "Nlb" in str(e["cmdlet"])]
    stop = drained.index("Stop-NlbClusterNode")
    remove = drained.index("Remove-NlbClusterNode")
    assert stop + 1 < remove and set(drained[stop + 1 : remove]) == {"Get-NlbClusterNode"}


def _save_plan(env: Env, capsys: pytest.CaptureFixture[str], name: str = "plan.json") -> Path:
    saved = env.tmp / name
    code, _, err = cli(capsys, "plan", str(env.org_dir), "--out", str(saved))
    assert code == 0, err
    return saved


def test_stale_plan_names_an_object_created_since(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _save_plan(env, capsys)
    env.organisation.add_databases(1, "HQ", "HQ-DB9")
    code, _, err = cli(capsys, "apply", str(saved), "--config", str(env.org_dir),
                       "--auto-approve", "--force")
    assert code == 1
    assert "stale" in err and "created since the plan: mailbox database HQ-DB901" in err
    assert env.current_lock() is None


def test_stale_plan_names_an_object_changed_since(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _save_plan(env, capsys)
    client = env.client()
    from casdesired.agent.protocol import Invocation

    client.run(client.make_request((Invocation("x", "Set-MailboxDatabase", {
        "Identity": "DR-DB01", "RpcClientAccessServer": "dr-cas02.contoso.local"}),)))
    code, _, err = cli(capsys, "apply", str(saved), "--config", str(env.org_dir),
                       "--auto-approve", "--force")
    assert code == 1 and "changed since the plan: mailbox database DR-DB01" in err


def test_a_plan_file_is_never_applied_twice(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    saved = _save_plan(env, capsys)
    args = ["apply", str(saved), "--config", str(env.org_dir), "--auto-approve", "--force"]
    assert cli(capsys, *args, "--audit-log", str(env.audit))[0] == 0
    # A torn or damaged line (here: nested beyond the JSON decoder's recursion) is skipped.
    env.audit.write_text("[" * 100_000 + "\n" + env.audit.read_text("utf-8"), "utf-8")
    code, _, err = cli(capsys, *args, "--audit-log", str(env.audit))
    assert code == 1 and "already applied" in err and str(env.audit) in err
    # Another runner with another audit log: the Windows side remembers it too.
    code, _, err = cli(capsys, *args, "--audit-log", str(env.tmp / "other.jsonl"))
    assert code == 1 and f"plan {Plan.load(saved).plan_id} was already applied here" in err


@pytest.mark.parametrize("position", range(8))
def test_a_fault_stops_the_apply_reports_exactly_and_the_next_plan_is_the_remainder(
    env: Env, capsys: pytest.CaptureFixture[str], position: int
) -> None:
    saved = _save_plan(env, capsys)
    plan = Plan.load(saved)
    failing = plan.changes[position]
    first = failing.invocations()[0]
    identity = first.parameters.get("Identity")
    message = "Active Directory operation failed on DC01.contoso.local. Injected."
    fault = {"cmdlet": first.cmdlet, "message": message}
    if identity is not None:
        fault["identity"] = str(identity)
    env.lab.faults.update({"cmdlets": [fault]})
    mark = env.lab.journal.entries()[-1]["seq"]
    code, out, err = cli(capsys, "apply", str(saved), "--config", str(env.org_dir),
                         "--auto-approve", "--force", "--audit-log", str(env.audit))
    assert code == 1
    assert f"Applied {position} of 8 change(s)." in out
    # Where the lock stands, then the error: the verifying read released it.
    lock_id = json.loads(env.audit.read_text().splitlines()[-1])["lock_id"]
    assert err.splitlines() == [
        f"casdesired: released lock {lock_id}: this apply does not hold the organisation lock "
        "any more",
        f"casdesired: error: apply incomplete: {position} applied, 1 failed, "
        f"{7 - position} not attempted",
    ]
    assert f"failed: {failing.describe()}" in out and message in out
    for change in plan.changes[:position]:
        assert f"applied: {change.describe()}" in out
    for change in plan.changes[position + 1 :]:
        assert f"not attempted: {change.describe()}" in out
    # The journal: the failed cmdlet is the last write; nothing of a later change ran.
    ran = env.cmdlets(int(mark))
    failed_at = next(i for i, e in enumerate(ran) if e["ok"] is False)
    later = {i.cmdlet for c in plan.changes[position + 1 :] for i in c.invocations()}
    after_failure = [e["cmdlet"] for e in ran[failed_at + 1 :]]
    assert not [c for c in after_failure if c in later and not str(c).startswith("Get-")]
    assert env.current_lock() is None
    env.lab.faults.clear()
    code, out, _err = cli(capsys, "plan", str(env.org_dir))
    remainder = [line.strip() for line in out.splitlines() if line.strip()[:2] in ("+ ", "~ ")]
    assert len(remainder) == 8 - position
    for line, change in zip(remainder, plan.changes[position:], strict=True):
        assert change.describe().split(" (")[0] in line


def test_a_fault_before_the_first_change_applies_nothing(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env.lab.faults.update({"cmdlets": [{"cmdlet": "Register-CasdesiredPlan"}]})
    code, out, _err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force")
    assert code == 1 and "Applied 0 of 8 change(s)." in out
    assert out.count("not attempted: ") == 8 and "Register-CasdesiredPlan failed" in out
    writes = [e for e in env.cmdlets() if is_fenced(str(e["cmdlet"]))]  # the writes
    assert writes == [] and env.current_lock() is None


def test_a_fault_after_the_last_change_fails_verification_read_but_keeps_the_report(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    # The verification read (Get-MailboxDatabase after the writes) fails: every change was
    # applied, the lock is released anyway, and the apply is not called verified.
    env.lab.faults.update({"cmdlets": [{"cmdlet": "Get-MailboxDatabase", "after": 1}]})
    code, out, _err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force")
    assert code == 1
    assert "Applied 8 of 8 change(s)." in out and "could not re-read to verify" in out
    assert env.current_lock() is None


def test_a_held_lock_refuses_naming_its_owner_and_unlock_breaks_it(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    other = locking.enter("11111111-2222-3333-4444-555555555555", "ci@runner-7 (CI job 42)",
                          600, None)
    assert env.agent(other).ok
    code, _, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                       "--lock-timeout", "1")
    assert code == 1
    assert "locked by ci@runner-7 (CI job 42)" in err
    # The exact command, runnable from any directory: the agent cannot know the organisation's.
    assert ("with: casdesired unlock 11111111-2222-3333-4444-555555555555 --config "
            f"{env.org_dir.absolute()} (waited") in err
    assert env.organisation.snapshot()["files"][LOCK_PATH]  # kept in the lab's state file
    code, out, err = cli(capsys, "unlock", "--config", str(env.org_dir))
    assert code == 0 and "ci@runner-7" in out
    # What the endpoint knows: since when, last renewal (taking it counts), and the command.
    held = env.current_lock()
    assert held is not None and held.renewed == held.acquired
    assert f"since {held.acquired}, last renewed {held.renewed}, lease until" in out
    assert ("break it with: casdesired unlock 11111111-2222-3333-4444-555555555555 --config "
            f"{env.org_dir.absolute()}") in out
    # The organisation directory given where the lock id goes: said, nothing broken.
    code, out, err = cli(capsys, "unlock", str(env.org_dir))
    assert code == 1 and "is a directory, not a lock id" in err and "--config" in err
    assert env.current_lock() is not None
    code, out, err = cli(capsys, "unlock", "00000000-0000-0000-0000-000000000000",
                         "--config", str(env.org_dir))
    assert code == 1 and "not held" in err
    code, out, err = cli(capsys, "unlock", "11111111-2222-3333-4444-555555555555",
                         "--config", str(env.org_dir))
    assert code == 0 and "Removed lock 11111111" in out
    assert cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force")[0] == 0


def test_an_expired_lease_is_taken_over(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    dead = locking.enter("99999999-0000-0000-0000-000000000000", "killed@job", 1, None)
    assert env.agent(dead).ok
    import time

    time.sleep(1.1)
    code, _out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force")
    assert code == 0, err
    assert "took over the expired lock of killed@job" in err


def test_lock_functions_are_strict_about_parameters(env: Env) -> None:
    from casdesired.agent.protocol import Invocation

    result = env.agent(Invocation("x", "Get-CasdesiredLock", {"Force": True}))
    assert not result.ok and result.error and "Force" in result.error.message
    bad = env.agent(locking.enter("../../evil", "me", 10, None))
    assert not bad.ok and bad.error and "not a valid lock id" in bad.error.message

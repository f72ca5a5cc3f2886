"""What apply and unlock say: one prefix per line, and commands that work when copied."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from apply.labenv import Env, cli
from casdesired.apply import lock as locking
from casdesired.plan.plan import Plan

NOBODY = "00000000-0000-0000-0000-000000000000"


def test_agent_refusals_carry_one_casdesired_prefix(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert env.agent(locking.enter("11111111-2222-3333-4444-555555555555", "ci@runner-7",
                                   600, None)).ok
    code, _out, err = cli(capsys, "unlock", NOBODY, "--config", str(env.org_dir))
    assert code == 1
    assert err.startswith(f"casdesired: error: lock {NOBODY} is not held here")
    assert err.count("casdesired:") == 1
    code, _out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force")
    assert code == 1
    assert err.startswith("casdesired: error: the organisation is locked by ci@runner-7")
    assert "casdesired: error: casdesired:" not in err
    assert cli(capsys, "unlock", "11111111-2222-3333-4444-555555555555",
               "--config", str(env.org_dir))[0] == 0


def test_a_plan_applied_elsewhere_is_refused_with_one_prefix(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = env.tmp / "plan.json"
    assert cli(capsys, "plan", str(env.org_dir), "--out", str(saved))[0] == 0
    args = ["apply", str(saved), "--config", str(env.org_dir), "--auto-approve", "--force"]
    assert cli(capsys, *args, "--audit-log", str(env.audit))[0] == 0
    code, _out, err = cli(capsys, *args, "--audit-log", str(env.tmp / "other-runner.jsonl"))
    assert code == 1
    plan_id = Plan.load(saved).plan_id
    assert err.startswith(f"casdesired: error: plan {plan_id} was already applied here")
    assert "casdesired: error: casdesired:" not in err


def test_the_rollback_hint_is_a_whole_command_that_works_from_another_directory(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                         "--audit-log", str(env.audit))
    assert code == 0, err
    found = re.search(r"^Rollback plan: .* \(review: (casdesired apply .*)\)$", out, re.M)
    assert found, out
    command = shlex.split(found.group(1))
    assert command[3:] == ["--config", str(env.org_dir)]
    elsewhere = env.tmp / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no sites/ here: the command must name its organisation
    code, out, err = cli(capsys, *command[1:], "--auto-approve", "--force",
                         "--audit-log", str(env.audit))
    assert code == 0, err
    assert "Applied 8 of 8 change(s)." in out


def test_a_plan_file_without_its_organisation_directory_points_at_config(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = env.tmp / "plan.json"
    assert cli(capsys, "plan", str(env.org_dir), "--out", str(saved))[0] == 0
    elsewhere = env.tmp / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    commands = env.lab.journal.count("command")
    code, _out, err = cli(capsys, "apply", str(saved), "--auto-approve")
    assert code == 1
    assert err.startswith("casdesired: error: sites: no such organisation directory")
    assert "--config DIR" in err and str(saved) in err and "Traceback" not in err
    assert env.lab.journal.count("command") == commands  # refused before connecting
    assert not Path(elsewhere / "casdesired-audit.jsonl").exists()


@pytest.mark.parametrize("depth", [990, 100_000])
def test_a_plan_file_nested_too_deeply_is_one_error_not_a_traceback(
    env: Env, capsys: pytest.CaptureFixture[str], depth: int
) -> None:
    """Python's JSON decoder and the checksum recurse per level: a hostile or damaged file
    must still end in one line and exit 1, before anything connects."""
    saved = env.tmp / "deep.json"
    saved.write_text('{"format_version": 1, "x": ' + "[" * depth + "]" * depth + "}")
    commands = env.lab.journal.count("command")
    code, _out, err = cli(capsys, "apply", str(saved), "--config", str(env.org_dir))
    assert code == 1
    assert err == f"casdesired: error: {saved} is not a plan file (JSON nested too deeply)\n"
    assert env.lab.journal.count("command") == commands

"""The plan shows what apply will refuse without --force, with the same reasons apply gives.

The real CLI against the embedded lab (loopback). The example organisation rebinds 5 of the
lab's 12 databases: above its policy's 30%, so applying all of it needs --force.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from casdesired.cli import main
from casdesired.plan.plan import Plan
from casdesired.plan.planfile import plan_schema

SITES = Path(__file__).resolve().parents[2] / "sites"
REASON = (
    "threshold max_rebind_percent: the plan rebinds 5 of 12 databases (41.7%), above the "
    "policy's 30% (applies from 10 databases)"
)


@pytest.fixture(autouse=True)
def lab_state_outside_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_shows_needs_force_in_every_format_and_apply_refuses_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "plan", str(SITES))
    assert code == 0, err
    safety = out.split("Safety notes (read before applying):")[1]
    assert f"! needs --force: {REASON}" in safety

    saved = tmp_path / "plan.json"
    code, out, err = run(capsys, "plan", "--format", "json", str(SITES), "--out", str(saved))
    document = json.loads(out)
    Draft202012Validator(plan_schema()).validate(document)
    assert document["needs_force"] == [REASON]
    assert Plan.load(saved).needs_force == (REASON,)

    _, markdown, _ = run(capsys, "plan", "--format", "markdown", str(SITES))
    section = markdown.split("#### Safety decisions")[1].split("#### DNS")[0]
    assert "- **needs `--force`**: threshold max_rebind_percent: the plan rebinds 5 of" \
        in section

    code, out, err = run(
        capsys, "apply", str(saved), "--config", str(SITES), "--auto-approve",
        "--audit-log", str(tmp_path / "audit.jsonl"),
    )
    assert code == 1 and f"{REASON}; re-run with --force to apply it anyway" in err


def test_a_plan_within_the_policy_needs_no_force(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", "--format", "json", str(SITES), "--site", "Branch")
    assert code == 0, err
    assert json.loads(out)["needs_force"] == []  # 3 of 12 databases: 25%
    _, text, _ = run(capsys, "plan", str(SITES), "--site", "Branch")
    assert "needs --force" not in text
    _, markdown, _ = run(capsys, "plan", "--format", "markdown", str(SITES), "--site", "Branch")
    assert "needs `--force`" not in markdown


def test_apply_shows_the_same_plan_with_the_force_need_before_refusing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # apply builds its plan with the same code as `casdesired plan`, so the reviewer of a
    # terminal apply sees the --force need before the refusal, not only in it.
    code, out, err = run(capsys, "apply", str(SITES), "--auto-approve")
    assert code == 1
    assert f"needs --force: {REASON}" in out
    assert f"refused before any change was made:\n  {REASON}" in err

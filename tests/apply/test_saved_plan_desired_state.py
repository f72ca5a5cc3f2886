"""A saved plan is refused when the YAML changed after it was made (docs/desired-state.md).

The plan is the reviewed thing: applied with ``--config DIR`` whose files differ from the ones
it was made from, it would do what the YAML no longer says (e.g. rebind databases the YAML no
longer manages). Apply refuses before any write, naming every file changed, added or gone.
Through the real CLI, real pywinrm and the loopback lab.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apply.labenv import Env, cli
from casdesired.agent.protocol import is_fenced
from casdesired.plan.plan import Plan
from casdesired.plan.planfile import checksum, dumps


def _writes(env: Env) -> list[object]:
    return [e for e in env.cmdlets() if is_fenced(str(e["cmdlet"]))]  # the writes


def _saved_plan(env: Env, capsys: pytest.CaptureFixture[str]) -> Path:
    saved = env.tmp / "reviewed.json"
    code, _out, err = cli(capsys, "plan", str(env.org_dir), "--out", str(saved))
    assert code == 0, err
    return saved


def _apply(env: Env, capsys: pytest.CaptureFixture[str], plan: Path) -> tuple[int, str, str]:
    return cli(capsys, "apply", str(plan), "--config", str(env.org_dir), "--auto-approve",
               "--force", "--audit-log", str(env.audit))


def test_a_saved_plan_is_refused_after_a_site_file_changed_naming_it(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _saved_plan(env, capsys)
    assert "rebind database HQ-DB05" in "\n".join(c.describe() for c in Plan.load(saved).changes)
    # HQ stops managing HQ-DB03..06: the saved plan would still rebind HQ-DB05 and HQ-DB06.
    hq = env.org_dir / "hq.yaml"
    hq.write_text(hq.read_text().replace('  patterns: ["HQ-DB0[3-6]"]\n', ""))
    code, _out, err = _apply(env, capsys, saved)
    assert code == 1
    assert "Traceback" not in err
    assert "refused before any change was made" in err
    assert (f"the desired state in {env.org_dir} is not the one the plan was made from: "
            "hq.yaml changed; the reviewed plan no longer describes these files, so make a new "
            "plan from them (casdesired plan --out)") in err
    assert _writes(env) == []
    assert not env.audit.exists()  # refused before apply-started
    assert env.current_lock() is None


def test_files_added_and_gone_are_named_too(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _saved_plan(env, capsys)
    (env.org_dir / "dr.yaml").rename(env.org_dir / "sites-dr.yaml")
    code, _out, err = _apply(env, capsys, saved)
    assert code == 1
    assert "is not the one the plan was made from: dr.yaml is gone, sites-dr.yaml is new;" in err
    assert _writes(env) == []


def test_an_unchanged_desired_state_applies_the_saved_plan(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _saved_plan(env, capsys)
    recorded = json.loads(saved.read_text())["desired_files"]
    assert sorted(recorded) == ["branch.yaml", "dr.yaml", "hq.yaml", "organisation.yaml"]
    code, out, err = _apply(env, capsys, saved)
    assert code == 0, err
    assert "Applied 8 of 8 change(s)." in out


def test_a_plan_file_from_before_per_file_digests_is_refused_on_its_digest(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _saved_plan(env, capsys)
    document = json.loads(saved.read_text())
    del document["desired_files"], document["checksum"]
    document["checksum"] = checksum(document)
    saved.write_text(dumps(document))
    assert Plan.load(saved).desired_files is None  # format_version 1 without the field loads
    hq = env.org_dir / "hq.yaml"
    hq.write_text(hq.read_text() + "# reviewed? no\n")
    code, _out, err = _apply(env, capsys, saved)
    assert code == 1
    assert ("the desired state changed since the plan was made (its digest differs; this plan "
            "file predates per-file digests, so the files cannot be named); make a new plan"
            ) in err
    assert _writes(env) == []


def test_a_rollback_plan_still_applies_after_the_yaml_changed(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    # A rollback plan restores live values: it is pinned to the live state, not to any YAML.
    code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                         "--audit-log", str(env.audit))
    assert code == 0, err
    (rollback,) = env.tmp.glob("casdesired-rollback-*.json")
    hq = env.org_dir / "hq.yaml"
    hq.write_text(hq.read_text() + "# changed after the apply\n")
    code, out, err = _apply(env, capsys, rollback)
    assert code == 0, err
    assert "is not the one the plan was made from" not in err
    assert "Applied" in out

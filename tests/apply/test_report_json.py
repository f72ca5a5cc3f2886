"""`casdesired apply --format json`: the end report a pipeline posts, whatever the outcome.

Through the real CLI against the lab: stdout is exactly one JSON document valid against
schemas/apply-report.schema.json, with each change's status and Exchange's own text; the human
output (the plan, the text report, the error line) goes to stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from apply.labenv import ROOT, Env, cli
from casdesired.plan.plan import Plan

SCHEMA = json.loads((ROOT / "schemas" / "apply-report.schema.json").read_text("utf-8"))


def report(out: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(out)  # the whole of stdout: one document
    Draft202012Validator.check_schema(SCHEMA)
    errors = list(Draft202012Validator(SCHEMA).iter_errors(document))
    assert errors == [], errors
    return document


def _save(env: Env, capsys: pytest.CaptureFixture[str]) -> Path:
    saved = env.tmp / "plan.json"
    code, _out, err = cli(capsys, "plan", str(env.org_dir), "--out", str(saved))
    assert code == 0, err
    return saved


def _apply(env: Env, capsys: pytest.CaptureFixture[str], saved: Path) -> tuple[int, str, str]:
    return cli(capsys, "apply", str(saved), "--config", str(env.org_dir), "--auto-approve",
               "--force", "--format", "json", "--audit-log", str(env.audit))


def test_an_applied_plan_reports_every_change_applied_and_verified(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _save(env, capsys)
    plan = Plan.load(saved)
    code, out, err = _apply(env, capsys, saved)
    assert code == 0, err
    document = report(out)
    assert document["outcome"] == "applied" and document["exit_code"] == 0
    assert document["verified"] is True
    assert document["plan"]["plan_id"] == plan.plan_id
    assert [c["description"] for c in document["changes"]] == [
        c.describe() for c in plan.changes
    ]
    assert {c["status"] for c in document["changes"]} == {"applied"}
    assert document["counts"] == {"applied": len(plan.changes), "failed": 0,
                                  "not_attempted": 0, "unknown": 0}
    assert Path(document["rollback"]["path"]).is_file()
    # The human output is all on stderr: the plan and the text report.
    assert f"Applied {len(plan.changes)} of {len(plan.changes)} change(s)." in err
    assert plan.summary in err


def test_a_failed_change_carries_exchanges_text_and_the_rest_are_not_attempted(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _save(env, capsys)
    plan = Plan.load(saved)
    failing = plan.changes[2]
    first = failing.invocations()[0]
    message = "Active Directory operation failed on DC01.contoso.local. Injected."
    fault: dict[str, object] = {"cmdlet": first.cmdlet, "message": message}
    if first.parameters.get("Identity") is not None:
        fault["identity"] = str(first.parameters["Identity"])
    env.lab.faults.update({"cmdlets": [fault]})
    code, out, err = _apply(env, capsys, saved)
    assert code == 1
    document = report(out)
    assert document["outcome"] == "incomplete" and document["exit_code"] == 1
    assert [c["status"] for c in document["changes"]] == (
        ["applied"] * 2 + ["failed"] + ["not attempted"] * (len(plan.changes) - 3)
    )
    failed = document["changes"][2]
    assert failed["description"] == failing.describe()
    assert message in failed["error"] and failed["error_from"] == "Exchange"
    assert document["stopped"] == f"{failing.describe()} failed"
    assert document["verified"] is False
    assert "casdesired: error: apply incomplete: 2 applied, 1 failed" in err


def test_a_refused_plan_reports_the_refusals_and_nothing_attempted(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _save(env, capsys)
    hq = env.org_dir / "hq.yaml"
    hq.write_text(hq.read_text() + "\n# reviewed? no.\n")
    code, out, err = _apply(env, capsys, saved)
    assert code == 1
    document = report(out)
    assert document["outcome"] == "refused"
    assert document["exit_code"] == 1
    assert len(document["refusals"]) == 1
    assert "hq.yaml changed" in document["refusals"][0]
    assert {c["status"] for c in document["changes"]} == {"not attempted"}
    assert document["rollback"] is None
    assert document["error"].startswith("refused before any change was made:")
    assert "casdesired: error: refused before any change was made" in err


def test_an_error_before_any_plan_is_still_one_document(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = _save(env, capsys)
    monkeypatch.setenv("CASDESIRED_PASSWORD", "Wr0ng-MARKER-pw")
    code, out, err = _apply(env, capsys, saved)
    assert code == 1
    document = report(out)
    assert document["outcome"] == "error"
    assert document["error"] and document["error"] in err
    assert "Wr0ng-MARKER-pw" not in out + err  # never the credential
    assert document["plan"]["plan_id"] == Plan.load(saved).plan_id
    code, out, err = cli(capsys, "apply", str(env.tmp / "missing.json"), "--format", "json",
                         "--auto-approve", "--config", str(env.tmp / "nowhere"))
    assert code == 1
    document = report(out)
    assert document["outcome"] == "error" and document["plan"] is None


def test_nothing_to_apply(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert _apply(env, capsys, _save(env, capsys))[0] == 0
    code, out, err = _apply(env, capsys, _save(env, capsys))
    assert code == 0, err
    document = report(out)
    assert document["outcome"] == "nothing-to-apply"
    assert document["changes"] == [] and "Nothing to apply." in err

"""An apply whose plan withholds a site's changes applies the other sites, then fails visibly.

Through the real CLI against the lab: HQ binds a database that does not exist (a blocking
finding), so HQ's changes are withheld while Branch's are applied. The apply must not pass for
a complete one — in text, in JSON, from a directory and from a saved plan, and when every
change is withheld.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from apply.labenv import ROOT, Env, cli

SCHEMA = json.loads((ROOT / "schemas" / "apply-report.schema.json").read_text("utf-8"))
BRANCH_DBS = ("BR-DB01", "BR-DB02", "BR-DB03")


def block_hq(env: Env) -> str:
    """Bind a database that does not exist in hq.yaml; the finding's ``file:line:`` (paths are
    shown as given: relative to the current directory, as the organisation was named)."""
    hq = env.org_dir / "hq.yaml"
    lines = hq.read_text("utf-8").splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if "names: [HQ-DB01, HQ-DB02]" in line)
    lines[number] = lines[number].replace("HQ-DB02]", "HQ-DB02, HQ-NOPE]")
    hq.write_text("".join(lines), "utf-8")
    return f"{os.path.relpath(hq)}:{number + 1}:"


def targets(env: Env) -> dict[str, str]:
    return {
        db["name"]: db["rpc_client_access_server"]["shown"]
        for db in env.organisation.snapshot()["databases"]
    }


def report(out: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(out)
    errors = list(Draft202012Validator(SCHEMA).iter_errors(document))
    assert errors == [], errors
    return document


def apply(env: Env, capsys: pytest.CaptureFixture[str], target: Path,
          *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "apply", str(target), "--config", str(env.org_dir), "--auto-approve",
               "--audit-log", str(env.audit), *extra)


def assert_lists_hq(text: str, where: str) -> None:
    tail = text[text.index("Withheld, not applied:"):]
    assert tail.startswith("Withheld, not applied: 4 change(s) of 1 site(s) (HQ), by blocking "
                           "findings:\n  HQ: 4 change(s) withheld by 1 blocking finding(s)\n"
                           f"    BLOCKING [database-unknown] {where}")
    assert "database 'HQ-NOPE' does not exist" in tail


def test_applying_a_directory_applies_branch_then_fails_naming_hq(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    where = block_hq(env)
    code, _out, _err = cli(capsys, "plan", str(env.org_dir))
    assert code == 1
    before = targets(env)
    code, out, err = apply(env, capsys, env.org_dir)
    assert code == 1, out + err
    after = targets(env)
    assert {after[db] for db in BRANCH_DBS} == {"outlook-branch.contoso.local"}
    assert after["HQ-DB05"] == before["HQ-DB05"] == "hq-cas02.contoso.local"
    report_text = out[out.index("\nApplied "):]
    assert report_text.startswith(
        "\nApplied 4 of 4 change(s); 4 more withheld by blocking findings (listed below).\n")
    assert_lists_hq(report_text, where)
    # The withheld sites end the report: the last thing a pipeline log shows.
    assert report_text.rstrip().endswith("does not match the desired state.")
    assert ("casdesired: error: apply incomplete: 4 applied, 0 failed, 0 not attempted, "
            "4 withheld by blocking findings (HQ)") in err
    entry = json.loads(env.audit.read_text("utf-8").splitlines()[-1])
    assert entry["event"] == "apply-finished" and entry["exit_code"] == 1
    assert [(w["site"], w["count"]) for w in entry["withheld"]] == [("HQ", 4)]


def test_the_json_report_carries_the_withheld_sites_and_exit_1(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    where = block_hq(env)
    code, out, err = apply(env, capsys, env.org_dir, "--format", "json")
    assert code == 1, err
    document = report(out)
    assert document["outcome"] == "withheld" and document["exit_code"] == 1
    assert document["verified"] is True  # what did run is applied and verified
    assert document["counts"]["applied"] == 4
    [hq] = document["withheld"]
    assert hq["site"] == "HQ" and hq["count"] == 4 == len(hq["changes"])
    [finding] = hq["findings"]
    assert finding["rule"] == "database-unknown"
    assert finding["location"].startswith(where)
    assert {c["site"] for c in hq["changes"]} == {"HQ"}
    assert "rebind database HQ-DB05: hq-cas02.contoso.local -> outlook-hq.contoso.local" in {
        c["description"].split(" (")[0] for c in hq["changes"]
    }


def test_applying_a_saved_plan_that_withholds_hq_fails_the_same_way(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    where = block_hq(env)
    saved = env.tmp / "plan.json"
    code, _out, _err = cli(capsys, "plan", str(env.org_dir), "--out", str(saved))
    assert code == 1 and saved.is_file()
    code, out, err = apply(env, capsys, saved, "--format", "json")
    assert code == 1, err
    document = report(out)
    assert document["outcome"] == "withheld"
    assert [(w["site"], w["count"]) for w in document["withheld"]] == [("HQ", 4)]
    assert document["withheld"][0]["findings"][0]["location"].startswith(where)
    assert_lists_hq(err, where)  # the text report went to stderr
    assert {targets(env)[db] for db in BRANCH_DBS} == {"outlook-branch.contoso.local"}


def test_when_every_change_is_withheld_apply_says_so_and_fails(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    where = block_hq(env)
    before = targets(env)
    code, out, err = apply(env, capsys, env.org_dir, "--site", "HQ")
    assert code == 1, out + err
    assert targets(env) == before  # nothing ran
    assert "Nothing to apply" not in out and "Applied 0 of 0" not in out
    assert "Verified" not in out
    assert "\nNothing was applied: every change is withheld by blocking findings.\n" in out
    assert_lists_hq(out, where)
    assert ("casdesired: error: apply incomplete: nothing applied, 4 withheld by blocking "
            "findings (HQ)") in err
    code, out, err = apply(env, capsys, env.org_dir, "--site", "HQ", "--format", "json")
    assert code == 1, err
    document = report(out)
    assert document["outcome"] == "withheld" and document["exit_code"] == 1
    assert document["changes"] == [] and document["verified"] is False
    assert [(w["site"], w["count"]) for w in document["withheld"]] == [("HQ", 4)]


def test_nothing_withheld_still_applies_and_exits_0(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = apply(env, capsys, env.org_dir, "--force", "--format", "json")
    assert code == 0, err
    document = report(out)
    assert document["outcome"] == "applied" and document["withheld"] == []
    assert "Withheld" not in err

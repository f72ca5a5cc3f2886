"""What a real organisation shows the plan: orphaned pointers and Exchange 2010/2013 coexistence.

Field facts (shared/domain/exchange2010-field.md §7, §9), through the real CLI against the
embedded lab, whose state a test edits as another administrator (or a migration) would.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from casdesired.cli import main
from casdesired.lab.exchange.organisation import Organisation

SITES = Path(__file__).resolve().parents[2] / "sites"
V15 = "Version 15.0 (Build 1497.2)"


def org_copy(tmp_path: Path) -> Path:
    org = tmp_path / "org"
    shutil.copytree(SITES, org)
    path = org / "organisation.yaml"
    text = path.read_text("utf-8")
    path.write_text(
        text.replace("connection:\n", f"connection:\n  lab: {{state: {tmp_path}/lab.json}}\n"),
        "utf-8",
    )
    return org


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_databases_left_blank_by_a_removed_array_are_named_orphaned_and_rebound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = org_copy(tmp_path)
    run(capsys, "plan", str(org), "--site", "DR")  # creates the lab state file
    lab = Organisation.from_file(tmp_path / "lab.json")
    data = lab.snapshot()
    data["arrays"] = [a for a in data["arrays"] if a["site"] != "DR"]  # removed under its DBs
    lab.load(data)
    code, out, _ = run(capsys, "plan", "--format", "json", str(org), "--site", "DR")
    assert code == 0
    plan = json.loads(out)
    orphans = sorted(f["message"].split(" ")[1] for f in plan["findings"]
                     if f["rule"] == "database-orphaned-pointer")
    assert orphans == ["DR-DB01", "DR-DB02", "DR-DB03"]
    assert all(not f["blocking"] for f in plan["findings"])
    rebinds = [c["description"] for c in plan["changes"] if c["kind"] == "binding"]
    assert rebinds[0].startswith("rebind database DR-DB01: (none) -> outlook-dr.contoso.local")
    _, text, _ = run(capsys, "plan", str(org), "--site", "DR")
    assert "[database-orphaned-pointer]" in text and "orphaned pointer" in text
    # Its mailboxes are counted once, under its rebinding: never "0" in the finding.
    orphan = next(f["message"] for f in plan["findings"] if "DR-DB01" in f["message"])
    assert "for its mailboxes (counted under its rebinding)" in orphan
    assert " 0 mailboxes" not in text
    rebind = next(c for c in plan["changes"] if c["kind"] == "binding")
    assert rebind["mailboxes"] > 0


def test_an_exchange_2013_server_in_a_site_is_noted_and_the_site_still_applies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = org_copy(tmp_path)
    run(capsys, "plan", str(org), "--site", "HQ")
    lab = Organisation.from_file(tmp_path / "lab.json")
    data = lab.snapshot()
    newer = dict(next(s for s in data["servers"] if s["name"] == "HQ-CAS02"))
    newer.update(name="HQ-EX15", fqdn="hq-ex15.contoso.local", version=V15)
    data["servers"].append(newer)
    lab.load(data)
    code, out, err = run(capsys, "plan", "--format", "json", str(org), "--site", "HQ")
    assert code == 0, err
    plan = json.loads(out)
    [note] = [f for f in plan["findings"] if f["rule"] == "exchange-2013-coexistence"]
    assert not note["blocking"] and "HQ-EX15" in note["message"]
    assert plan["withheld"] == [] and len(plan["changes"]) == 4
    audit = ["--audit-log", str(tmp_path / "audit.jsonl")]
    code, out, err = run(capsys, "apply", str(org), "--site", "HQ", "--auto-approve", *audit)
    assert code == 0, out + err
    members = next(a for a in Organisation.from_file(tmp_path / "lab.json").snapshot()["arrays"]
                   if a["site"] == "HQ")
    assert members  # the array stays; 2013 servers are never members (lab: Members)


def test_mailboxes_are_counted_in_every_domain_of_the_forest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Field fact §3: the recipient scope is per session and defaults to the server's domain;
    # the agent sets ViewEntireForest, so a child domain's mailboxes count too.
    org = org_copy(tmp_path)
    code, out, err = run(capsys, "plan", "--format", "json", str(org), "--site", "HQ")
    assert code == 0, err
    [hq_db05] = [c for c in json.loads(out)["changes"] if c["identity"] == "HQ-DB05"]
    seeded = Organisation.from_file(tmp_path / "lab.json").snapshot()
    [db] = [d for d in seeded["databases"] if d["name"] == "HQ-DB05"]
    assert db["child_mailboxes"] == {"emea.contoso.local": 12}
    assert hq_db05["mailboxes"] == db["mailboxes"] + 12

"""Plan data: counts, summary, safety notes, JSON against the schema, save/load and tampering."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from changes.estates import MAILBOXES, plan_of, seed_input
from jsonschema import Draft202012Validator

from casdesired.changes.diff import diff_input
from casdesired.changes.types import OUTLOOK_PROFILE_WARNING, BindingChange
from casdesired.plan.plan import Plan
from casdesired.plan.planfile import PlanFileError, plan_schema


def seed_plan(**overrides: object) -> Plan:
    return plan_of(diff_input(seed_input(**overrides)))


def test_summary_counts_and_mailboxes() -> None:
    plan = seed_plan()
    rebound = ("HQ-DB05", "HQ-DB06", "BR-DB01", "BR-DB02")
    total = sum(MAILBOXES[n] for n in rebound)
    assert plan.counts == {"create": 2, "update": 5, "delete": 0}
    assert plan.summary == (
        f"Plan: 2 to create, 5 to change, 0 to destroy; {total:,} mailboxes affected"
    )


def test_every_rebinding_has_a_safety_note_with_mailboxes_and_outlook_warning() -> None:
    plan = seed_plan()
    notes = {n.change: n for n in plan.safety}
    for change in plan.changes:
        if isinstance(change, BindingChange):
            note = notes[f"binding:{change.database}"]
            assert note.mailboxes == MAILBOXES[change.database]
            assert OUTLOOK_PROFILE_WARNING in note.message
            assert change.before_target in note.message


def test_json_validates_against_the_schema() -> None:
    Draft202012Validator.check_schema(plan_schema())
    document = seed_plan().to_json()
    Draft202012Validator(plan_schema()).validate(document)
    assert document["format_version"] == 1
    assert document["changes"][0]["invocations"][0]["cmdlet"] == "New-ClientAccessArray"


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    plan = seed_plan()
    path = tmp_path / "plan.json"
    plan.save(path)
    loaded = Plan.load(path)
    assert loaded.changes == plan.changes
    assert loaded.findings == plan.findings and loaded.unmanaged == plan.unmanaged
    assert loaded.to_json() == plan.to_json()
    assert [i for c in loaded.changes for i in c.invocations()] == [
        i for c in plan.changes for i in c.invocations()
    ]


def test_tampered_plan_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    seed_plan().save(path)
    data = json.loads(path.read_text())
    # Retarget a rebinding, keeping the file valid JSON and schema-valid.
    entry = next(c for c in data["changes"] if c["kind"] == "binding")
    entry["data"]["target"] = "evil.contoso.local"
    path.write_text(json.dumps(data))
    with pytest.raises(PlanFileError, match="modified after it was saved"):
        Plan.load(path)
    # Same edit with a recomputed checksum: the invocations still betray it.
    from casdesired.plan.planfile import checksum

    data["checksum"] = checksum(data)
    path.write_text(json.dumps(data))
    with pytest.raises(PlanFileError, match="do not match"):
        Plan.load(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a plan file"),
        ("[]", "not a plan file"),
        ('{"format_version": 2}', "format_version 1"),
        ('{"format_version": 1, "changes": []}', "no checksum"),
    ],
)
def test_invalid_plan_files_give_one_clear_error(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(PlanFileError, match=message):
        Plan.load(path)


def test_schema_invalid_plan_with_valid_checksum(tmp_path: Path) -> None:
    from casdesired.plan.planfile import checksum

    data = {"format_version": 1, "changes": "nope"}
    data["checksum"] = checksum(data)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PlanFileError, match="invalid plan"):
        Plan.load(path)


def test_missing_plan_file(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="cannot read plan file"):
        Plan.load(tmp_path / "nope.json")


def test_withheld_changes_do_not_count() -> None:
    inp = seed_input()
    live = inp.live
    hq2 = live.servers["hq-cas02"]
    live.servers["hq-cas02"] = replace(hq2, site="Branch")
    plan = seed_plan(live=live)
    assert all(c.site == "Branch" for c in plan.changes)
    assert plan.withheld and "blocking finding" in plan.summary


def test_the_sites_dns_checked_are_saved_and_old_files_without_them_still_load(
    tmp_path: Path,
) -> None:
    from casdesired.plan.planfile import checksum

    plan = replace(seed_plan(), dns_checked=("Branch", "HQ"))
    path = tmp_path / "plan.json"
    plan.save(path)
    data = json.loads(path.read_text())
    assert data["dns_checked"] == ["Branch", "HQ"]
    Draft202012Validator(plan_schema()).validate({k: v for k, v in data.items() if k != "checksum"})
    assert Plan.load(path).dns_checked == ("Branch", "HQ")
    assert replace(plan, dns_checked=()).to_json()["dns_checked"] == []  # checked nothing
    # A file saved before the field existed: loads, and says nothing about DNS checks.
    del data["dns_checked"], data["checksum"]
    data["checksum"] = checksum(data)
    path.write_text(json.dumps(data))
    assert Plan.load(path).dns_checked is None
    assert "dns_checked" not in seed_plan().to_json()

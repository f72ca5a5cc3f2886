"""`casdesired drift` end to end: the real CLI against a Windows-like lab over loopback (pywinrm,
NTLM), another administrator changing the organisation out of band, the report in every format.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from apply.labenv import Env, cli
from jsonschema import Draft202012Validator
from plan.gfm import tables

from casdesired.lab.exchange.administrators import run_as
from casdesired.lab.exchange.binding import Session

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "drift.schema.json").read_text())
ALICE = "CONTOSO\\alice"


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def drift(env: Env, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return cli(capsys, "drift", str(env.org_dir), "--audit-log", str(env.audit), *args)


def drift_json(env: Env, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = drift(env, capsys, "--format", "json", *args)
    assert code in (0, 2), err
    document: dict[str, Any] = json.loads(out)
    Draft202012Validator(SCHEMA).validate(document)
    assert document["summary"]["drifted"] == (len(document["drift"]))
    assert (code == 2) == bool(document["drift"] or document["summary"]["blocking_findings"])
    return document


def applied(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                         "--audit-log", str(env.audit))
    assert code == 0, err + out


def item(document: dict[str, Any], identity: str, section: str = "drift") -> dict[str, Any]:
    found: list[dict[str, Any]] = [i for i in document[section] if i["identity"] == identity]
    assert len(found) == 1, [i["identity"] for i in document[section]]
    return found[0]


def test_an_out_of_band_change_is_reported_with_her_name_the_time_and_the_parameters(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    applied(env, capsys)
    code, out, err = drift(env, capsys)
    assert code == 0 and "No drift: the organisation matches git." in out, err

    before = utc_now()
    run_as(env.organisation, ALICE, "Set-MailboxDatabase",
           {"Identity": "HQ-DB05", "RpcClientAccessServer": "hq-cas02.contoso.local"})
    after = datetime.now(timezone.utc)

    document = drift_json(env, capsys)
    (only,) = document["drift"]
    assert only["identity"] == "HQ-DB05"
    assert only["git"] == {"rpc_client_access_server": "outlook-hq.contoso.local"}
    assert only["exchange"] == {"rpc_client_access_server": "hq-cas02.contoso.local"}
    assert only["last_applied"]["value"] == {"rpc_client_access_server": "outlook-hq.contoso.local"}
    run_date = datetime.strptime(only["attribution"]["run_date"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc)
    assert before <= run_date <= after
    assert only["attribution"] | {"parameters": None, "run_date": None} == {
        "status": "outside", "caller": "contoso.local/Users/alice", "run_date": None,
        "cmdlet": "Set-MailboxDatabase", "parameters": None, "object_modified": "HQ-DB05",
        "plan_id": None, "reason": None, "reason_code": None, "note": None,
    }
    assert only["attribution"]["parameters"] == [
        {"name": "Identity", "value": "HQ-DB05"},
        {"name": "RpcClientAccessServer", "value": "hq-cas02.contoso.local"},
    ]
    # casdesired's own apply wrote entries in the window; none is reported.
    assert document["audit_log"]["entries_read"] > 1
    assert document["not_applied_yet"] == []

    code, out, err = drift(env, capsys)
    assert code == 2, err
    stamp = run_date.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert (
        f"changed by:    contoso.local/Users/alice at {stamp} with Set-MailboxDatabase "
        "-Identity HQ-DB05 -RpcClientAccessServer hq-cas02.contoso.local"
    ) in out
    assert "git says:      outlook-hq.contoso.local" in out
    assert "Exchange says: hq-cas02.contoso.local" in out
    assert "last applied:  outlook-hq.contoso.local (plan " in out
    assert "keeps no old values" in out
    assert out.strip().endswith("Drift: 1 object(s) changed outside git.")


def test_casdesireds_own_changes_are_never_someone_elses_drift(
    env: Env, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    applied(env, capsys)
    # Git moves on after the apply: HQ-CAS02's site scope, which casdesired set, now differs.
    hq = env.org_dir / "hq.yaml"
    head, found, tail = hq.read_text().rpartition("site_scope: [HQ]")
    assert found
    hq.write_text(head + "site_scope: [HQ, DR]" + tail)
    document = drift_json(env, capsys)
    assert document["drift"] == []
    pending = item(document, "HQ-CAS02", "not_applied_yet")
    assert pending["attribution"]["status"] == "casdesired"
    assert pending["attribution"]["caller"] == "contoso.local/Users/casadmin"
    assert pending["attribution"]["plan_id"]
    code, out, err = drift(env, capsys)
    assert code == 0, err
    assert "Not applied yet: the live value is casdesired's own" in out
    assert "No drift: the organisation matches git but for 1 change(s) not applied yet." in out

    # Another runner, without this audit log: the endpoint's plan records still tell.
    elsewhere = ["--audit-log", str(tmp_path / "elsewhere.jsonl"), "--since", "1d"]
    code, out, err = cli(capsys, "drift", str(env.org_dir), *elsewhere)
    assert code == 0 and "No drift" in out, err

    # Neither: the entry is the service account's, outside any apply casdesired recorded.
    state = env.organisation.snapshot()
    state["files"] = {k: v for k, v in state["files"].items() if "\\applied\\" not in k}
    env.organisation.load(state)
    code, out, err = cli(capsys, "drift", str(env.org_dir), *elsewhere, "--format", "json")
    assert code == 2, err
    outside = item(json.loads(out), "HQ-CAS02")["attribution"]
    assert outside["status"] == "outside"
    assert "outside every apply casdesired recorded" in outside["note"]


def test_nlb_drift_is_unknown_and_says_why(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    applied(env, capsys)
    # Someone takes HQ-CAS02 out of the cluster on the node itself (Windows, not Exchange).
    node = Session("HQ-CAS02")
    for cmdlet, params in (("Stop-NlbClusterNode", {"Drain": True, "Timeout": 1}),
                           ("Remove-NlbClusterNode", {"Force": True})):
        env.organisation.invoke(cmdlet, params, frozenset({"nlb"}), node)
    document = drift_json(env, capsys)
    (nlb,) = [i for i in document["drift"] if i["kind"].startswith("nlb_")]
    assert nlb["attribution"]["status"] == "unknown"
    assert nlb["attribution"]["reason_code"] == "nlb"
    assert "not record it" in nlb["attribution"]["reason"]
    code, out, _ = drift(env, capsys)
    assert code == 2
    assert "changed by:    unknown (NLB membership is Windows NLB, not Exchange" in out


def test_with_audit_logging_disabled_every_attribution_is_unknown_and_a_hint_says_how(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    applied(env, capsys)
    run_as(env.organisation, ALICE, "Set-AdminAuditLogConfig", {"AdminAuditLogEnabled": False})
    run_as(env.organisation, ALICE, "Set-MailboxDatabase",
           {"Identity": "HQ-DB01", "RpcClientAccessServer": "hq-cas02.contoso.local"})
    run_as(env.organisation, ALICE, "Set-ClientAccessServer",
           {"Identity": "HQ-CAS02", "AutoDiscoverSiteScope": ["DR"]})
    code, out, err = drift(env, capsys)
    assert code == 2, err
    assert out.count("changed by:    unknown (audit logging is disabled)") == 2
    assert "Hint: turn audit logging on: Set-AdminAuditLogConfig -AdminAuditLogEnabled $true" in out
    assert "Exchange's admin audit log: logging OFF" in out
    document = drift_json(env, capsys)
    assert {i["attribution"]["reason_code"] for i in document["drift"]} == {"logging-disabled"}


def test_a_removed_array_leaves_orphaned_pointers_with_who_removed_it(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    applied(env, capsys)
    run_as(env.organisation, ALICE, "Remove-ClientAccessArray",
           {"Identity": "outlook-dr.contoso.local", "Confirm": False})
    run_as(env.organisation, "CONTOSO\\bob", "Remove-ClientAccessArray",
           {"Identity": "outlook-branch", "Confirm": False})
    document = drift_json(env, capsys)
    orphans = {i["identity"]: i for i in document["drift"] if i["orphaned_pointer"]}
    assert set(orphans) == {"DR-DB01", "DR-DB02", "DR-DB03", "BR-DB01", "BR-DB02", "BR-DB03"}
    for name, orphan in orphans.items():
        assert orphan["exchange"] == {"rpc_client_access_server": ""}
        assert orphan["attribution"]["cmdlet"] == "Remove-ClientAccessArray"
        if name.startswith("DR"):  # never set in the window: the array git binds it to
            assert orphan["attribution"]["caller"] == "contoso.local/Users/alice"
            assert orphan["attribution"]["note"] == (
                "it pointed at outlook-dr.contoso.local (where git binds it)")
        else:  # casdesired's apply set it: that array
            assert orphan["attribution"]["caller"] == "contoso.local/Users/bob"
            assert orphan["attribution"]["note"] == (
                "it pointed at outlook-branch.contoso.local (set with Set-MailboxDatabase by "
                "contoso.local/Users/casadmin)")
    _, out, _ = drift(env, capsys)
    assert "! database DR-DB01 (orphaned pointer)  [DR]" in out


def test_without_the_search_role_attribution_says_so(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    applied(env, capsys)
    env.organisation.configure(audit_search_role=False)
    run_as(env.organisation, ALICE, "Set-MailboxDatabase",
           {"Identity": "HQ-DB01", "RpcClientAccessServer": "hq-cas02.contoso.local"})
    document = drift_json(env, capsys)
    (only,) = document["drift"]
    assert only["attribution"]["reason_code"] == "no-search"
    assert "View-Only Audit Logs role" in only["attribution"]["reason"]
    assert any("New-ManagementRoleAssignment" in h for h in document["hints"])
    assert "Search-AdminAuditLog" in document["audit_log"]["search_error"]


def test_an_entry_older_than_the_window_or_aged_out_is_unknown_with_the_reason(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    applied(env, capsys)
    run_as(env.organisation, ALICE, "Set-MailboxDatabase",
           {"Identity": "HQ-DB01", "RpcClientAccessServer": "hq-cas02.contoso.local"},
           run_date=utc_now() - timedelta(days=2))
    recent = drift_json(env, capsys, "--since", "1d")
    assert item(recent, "HQ-DB01")["attribution"]["reason_code"] == "no-entry"
    wider = drift_json(env, capsys, "--since", "3d")
    assert item(wider, "HQ-DB01")["attribution"]["caller"] == "contoso.local/Users/alice"
    run_as(env.organisation, ALICE, "Set-AdminAuditLogConfig",
           {"AdminAuditLogAgeLimit": "1.00:00:00"})
    aged = drift_json(env, capsys, "--since", "3d")
    assert item(aged, "HQ-DB01")["attribution"]["reason_code"] == "aged-out"
    assert "age limit (1 days)" in item(aged, "HQ-DB01")["attribution"]["reason"]


def test_a_search_cut_at_its_result_size_says_so(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    applied(env, capsys)
    run_as(env.organisation, ALICE, "Set-MailboxDatabase",
           {"Identity": "HQ-DB01", "RpcClientAccessServer": "hq-cas02.contoso.local"})
    run_as(env.organisation, "CONTOSO\\bob", "Set-ClientAccessServer",
           {"Identity": "HQ-CAS02", "AutoDiscoverSiteScope": ["DR"]})
    document = drift_json(env, capsys, "--audit-results", "1")
    assert document["audit_log"]["truncated"] is True
    assert item(document, "HQ-CAS02")["attribution"]["caller"] == "contoso.local/Users/bob"
    assert item(document, "HQ-DB01")["attribution"]["reason_code"] == "truncated"


def test_dates_reach_a_day_first_server_as_dates(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    applied(env, capsys)
    env.organisation.configure(server_culture="de-DE")
    when = utc_now() - timedelta(hours=2)
    run_as(env.organisation, ALICE, "Set-MailboxDatabase",
           {"Identity": "HQ-DB01", "RpcClientAccessServer": "hq-cas02.contoso.local"},
           run_date=when)
    document = drift_json(env, capsys, "--since", (when - timedelta(minutes=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"))
    assert item(document, "HQ-DB01")["attribution"]["caller"] == "contoso.local/Users/alice"
    search = [e for e in env.lab.journal.entries(["cmdlet"])
              if e["cmdlet"] == "Search-AdminAuditLog"][-1]
    assert str(search["parameters"]["StartDate"]).startswith(
        (when - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S"))


def test_markdown_for_an_issue_reads_back_exactly(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    applied(env, capsys)
    run_as(env.organisation, "CONTOSO\\al|ce @team #1", "Set-MailboxDatabase",
           {"Identity": "HQ-DB01", "RpcClientAccessServer": "hq-cas02.contoso.local"})
    code, out, err = drift(env, capsys, "--format", "markdown")
    assert code == 2, err
    assert out.startswith("### casdesired drift for contoso\n")
    assert "**⚠️ 1 object(s) changed outside git**" in out
    (table,) = [t for t in tables(out) if "Changed by" in t.header]
    assert table.header == ["Object", "Site", "Git says", "Exchange says", "Changed by",
                            "When (UTC)", "How"]
    (row,) = table.rows
    assert row[0] == "database HQ-DB01"
    assert row[4] == "contoso.local/Users/al|ce @\u200bteam #\u200b1"
    assert row[6] == ("Set-MailboxDatabase -Identity HQ-DB01 -RpcClientAccessServer "
                      "hq-cas02.contoso.local")

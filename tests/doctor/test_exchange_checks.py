"""The Exchange checks: the session, the versions, what the account may read and write (RBAC,
looked up, never tried), and the recipient scope."""

from __future__ import annotations

from typing import Any

import pytest
from apply.labenv import Env

from casdesired.changes.types import (
    EXCHANGE_CHANGES,
    ArrayCreate,
    ArrayDelete,
    ArrayUpdate,
    AutodiscoverChange,
    BindingChange,
)
from casdesired.doctor.probe import WRITES
from doctor.helpers import Doctor, find, mutate, server


def test_every_write_casdesired_makes_is_what_doctor_looks_up() -> None:
    changes = [
        ArrayCreate("HQ", "outlook-hq.contoso.local", "outlook-hq"),
        ArrayUpdate("HQ", "old.contoso.local", "old", "new.contoso.local", "new"),
        ArrayDelete("DR", "outlook-dr.contoso.local", "outlook-dr"),
        BindingChange("HQ", "HQ-DB01", "hq-cas01.contoso.local", "outlook-hq.contoso.local"),
        AutodiscoverChange("HQ", "HQ-CAS01", None, "https://a/x.xml", (), ("HQ",)),
    ]
    exchange_kinds = {type(c) for c in changes}
    assert exchange_kinds == {k for k in EXCHANGE_CHANGES if "Nlb" not in k.__name__}
    sent: dict[str, set[str]] = {}
    for change in changes:
        for invocation in change.invocations():
            sent.setdefault(invocation.cmdlet, set()).update(invocation.parameters)
    assert sent == {cmdlet: set(parameters) for cmdlet, parameters in WRITES.items()}


def test_the_example_passes_with_an_organisation_management_account(doctor: Doctor) -> None:
    _, report, _ = doctor.run()
    rbac = find(report, "exchange.rbac")
    assert rbac["status"] == "PASS"
    assert "Set-MailboxDatabase -Identity -RpcClientAccessServer" in rbac["evidence"]
    assert "nothing was run" in rbac["evidence"][-1]
    session = find(report, "exchange.session")["evidence"]
    assert "Remove-PSSession removed it at the end of the run" in session


RBAC_CASES: list[tuple[list[str], str, str, str]] = [
    (["Set-MailboxDatabase"], "exchange.rbac",
     "Set-MailboxDatabase: the session does not publish it", "Add-RoleGroupMember"),
    (["Set-ClientAccessServer -AutoDiscoverSiteScope"], "exchange.rbac",
     "Set-ClientAccessServer: the session publishes it without -AutoDiscoverSiteScope",
     "Organization Management"),
    (["Get-Mailbox"], "exchange.read",
     "Get-Mailbox: The term 'Get-Mailbox' is not recognized", "View-Only Organization Management"),
    (["Set-AdServerSettings"], "exchange.recipient-scope",
     "The term 'Set-AdServerSettings' is not recognized", "Set-AdServerSettings"),
]


@pytest.mark.parametrize(("not_granted", "check_id", "evidence", "remedy"), RBAC_CASES)
def test_what_the_role_assignments_do_not_give_fails_without_being_tried(
    doctor: Doctor, env: Env, not_granted: list[str], check_id: str, evidence: str, remedy: str
) -> None:
    env.organisation.configure(rbac_not_granted=not_granted)
    env.lab.journal.clear()
    code, report, _ = doctor.run()
    found = find(report, check_id)
    assert code == 1 and found["status"] == "FAIL", found
    assert any(evidence in e for e in found["evidence"]), found["evidence"]
    assert remedy in found["remedy"]
    ran = {e["cmdlet"] for e in env.lab.journal.entries(["cmdlet"])}
    assert not ran & {"Set-MailboxDatabase", "Set-ClientAccessServer", "New-ClientAccessArray"}


def test_a_leaked_session_limit_fails_the_session_with_the_pool_to_recycle(
    doctor: Doctor, env: Env
) -> None:
    env.organisation.leak_exchange_sessions(18)
    code, report, _ = doctor.run()
    session = find(report, "exchange.session")
    assert code == 1 and session["status"] == "FAIL"
    assert "maximum number of 18 concurrent shells" in session["evidence"][0]
    assert "MSExchangePowerShellAppPool" in session["remedy"]
    for check_id in ("exchange.rbac", "exchange.read"):
        assert find(report, check_id)["status"] == "SKIPPED"
    # Everything that needs no Exchange still ran in the same execution.
    assert find(report, "ports.static-rpc", "HQ")["status"] == "PASS"
    assert find(report, "nlb.cluster", "HQ")["status"] == "PASS"


def _exchange_2013(name: str, site: str) -> dict[str, Any]:
    return {"name": name, "fqdn": f"{name.lower()}.contoso.local", "site": site,
            "roles": ["Mailbox", "ClientAccess"], "version": "Version 15.0 (Build 1497.2)",
            "autodiscover_internal_uri": None, "autodiscover_site_scope": []}


def test_an_exchange_2013_endpoint_fails_and_doctor_still_reports_the_rest(
    doctor: Doctor, env: Env
) -> None:
    mutate(env.organisation,
           lambda d: server(d, "HQ-CAS01").update(version="Version 15.0 (Build 1497.2)"))
    code, report, _ = doctor.run()
    version = find(report, "exchange.endpoint-version")
    assert code == 1 and version["status"] == "FAIL"
    assert "Exchange Server 2013 or later detected on HQ-CAS01" in version["evidence"][0]
    assert "Exchange 2010 server" in version["remedy"]
    assert find(report, "exchange.read")["status"] == "PASS"


def test_exchange_2013_servers_are_noted_with_what_casdesired_does_about_them(
    doctor: Doctor, env: Env
) -> None:
    mutate(env.organisation, lambda d: d["servers"].append(_exchange_2013("HQ-EX13", "HQ")))
    code, report, _ = doctor.run()
    servers = find(report, "exchange.servers")
    assert code == 0 and servers["status"] == "WARN"
    note = next(e for e in servers["evidence"] if e.startswith("HQ-EX13: Exchange 2013"))
    assert "Never a member of a 2010 CAS array" in note
    assert "withholds rebinding databases hosted on it" in note


def _audit(data: dict[str, Any], **config: Any) -> None:
    data["admin_audit_log"]["config"].update(config)


def test_audit_logging_off_fails_with_set_adminauditlogconfig(doctor: Doctor, env: Env) -> None:
    mutate(env.organisation, lambda d: _audit(d, enabled=False))
    code, report, _ = doctor.run()
    audit = find(report, "exchange.audit")
    assert code == 1 and audit["status"] == "FAIL"
    assert "AdminAuditLogEnabled False" in audit["evidence"][0]
    assert any("not logged: New-ClientAccessArray" in e and "logging is off" in e
               for e in audit["evidence"])
    assert "Set-AdminAuditLogConfig -AdminAuditLogEnabled $true" in audit["remedy"]


def test_casdesireds_cmdlets_excluded_from_the_log_fail(doctor: Doctor, env: Env) -> None:
    mutate(env.organisation, lambda d: _audit(d, excluded_cmdlets=["Set-Mailbox*"]))
    _, report, _ = doctor.run()
    audit = find(report, "exchange.audit")
    assert audit["status"] == "FAIL"
    assert any(e.startswith("not logged: Set-MailboxDatabase (") for e in audit["evidence"])


def test_without_the_audit_search_role_drift_cannot_name_who(doctor: Doctor, env: Env) -> None:
    env.organisation.configure(audit_search_role=False)
    code, report, _ = doctor.run()
    audit = find(report, "exchange.audit")
    assert code == 0 and audit["status"] == "WARN"
    assert any("Search-AdminAuditLog is not published" in e for e in audit["evidence"])
    assert "View-Only Audit Logs" in audit["remedy"]

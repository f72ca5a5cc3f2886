"""The lab's admin audit log, as Exchange 2010 SP1 keeps one (field §4): config, entries,
Search-AdminAuditLog's filters, dates culture-safe, RBAC, another administrator's changes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from casdesired.agent.protocol import ExchangeSession, Invocation, Result
from casdesired.lab.exchange import Organisation
from casdesired.lab.exchange.administrators import run_as
from casdesired.lab.exchange.clock import SystemClock
from casdesired.lab.exchange.errors import ExchangeError
from casdesired.lab.exchange.testing import call
from casdesired.lab.process import Logon
from casdesired.lab.server import Lab

ENTRY = ("Caller", "CmdletName", "CmdletParameters", "ObjectModified", "RunDate", "Succeeded",
         "Error")
PARAMS = {"CmdletParameters": ("Name", "Value")}
ALICE = "CONTOSO\\alice"


class Clock(SystemClock):
    """Wall-clock time that a test moves on."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc).timestamp()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def org(clock: Clock) -> Organisation:
    return Organisation.from_seed(clock=clock)


def one(org: Organisation, invocation: Invocation, **kwargs: Any) -> Result:
    (result,) = call(org, invocation, **kwargs).results
    return result


CHANGES = ["Set-MailboxDatabase", "Set-ClientAccessServer", "Set-AdminAuditLogConfig"]
"""What the tests look for: not the Set-AdServerSettings every agent run starts with."""


def search(org: Organisation, parameters: dict[str, Any] | None = None,
           dates: tuple[str, ...] = (), **kwargs: Any) -> Result:
    given = {k: v for k, v in {"Cmdlets": CHANGES, **(parameters or {})}.items() if v is not None}
    return one(org, Invocation("s", "Search-AdminAuditLog", given, ENTRY,
                               dates=dates, expand=PARAMS), **kwargs)


def rebind(org: Organisation, db: str, target: str) -> Result:
    return one(org, Invocation("w", "Set-MailboxDatabase",
                               {"Identity": db, "RpcClientAccessServer": target}))


def test_a_fresh_sp1_organisation_logs_everything_for_90_days(org: Organisation) -> None:
    config = one(org, Invocation("c", "Get-AdminAuditLogConfig", {}, (
        "AdminAuditLogEnabled", "AdminAuditLogCmdlets", "AdminAuditLogParameters",
        "AdminAuditLogExcludedCmdlets", "AdminAuditLogAgeLimit")))
    assert config.objects == ({
        "AdminAuditLogEnabled": True, "AdminAuditLogCmdlets": ["*"],
        "AdminAuditLogParameters": ["*"], "AdminAuditLogExcludedCmdlets": [],
        "AdminAuditLogAgeLimit": "90.00:00:00",
    },)


def test_a_write_is_logged_with_caller_parameters_object_and_utc_time(org: Organisation) -> None:
    assert rebind(org, "BR-DB01", "outlook-hq.contoso.local").ok
    one(org, Invocation("r", "Get-MailboxDatabase", {"Identity": "BR-DB01"}, ("Name",)))
    found = search(org, {"Cmdlets": None})
    # Get- and Search- cmdlets are never logged; the agent's own Set-AdServerSettings is, once
    # for each of the three runs so far.
    assert sorted(str(e["CmdletName"]) for e in found.objects) == [
        "Set-AdServerSettings", "Set-AdServerSettings", "Set-AdServerSettings",
        "Set-MailboxDatabase",
    ]
    writes = [e for e in found.objects if e["CmdletName"] == "Set-MailboxDatabase"]
    assert writes == [{
        "Caller": "contoso.local/Users/casadmin",
        "CmdletName": "Set-MailboxDatabase",
        "CmdletParameters": [
            {"Name": "Identity", "Value": "BR-DB01"},
            {"Name": "RpcClientAccessServer", "Value": "outlook-hq.contoso.local"},
        ],
        "ObjectModified": "BR-DB01",
        "RunDate": "2024-05-01T08:00:00.0000000Z",
        "Succeeded": True,
        "Error": None,
    }]
    assert not any(e["CmdletName"].startswith(("Get-", "Search-")) for e in found.objects)


def test_parameters_print_their_names_unless_expanded(org: Organisation) -> None:
    rebind(org, "BR-DB01", "outlook-hq.contoso.local")
    plain = one(org, Invocation("s", "Search-AdminAuditLog",
                                {"Cmdlets": ["Set-MailboxDatabase"]}, ("CmdletParameters",)))
    assert plain.objects == ({"CmdletParameters": ["Identity", "RpcClientAccessServer"]},)


def test_a_failure_after_binding_is_logged_as_failed_one_before_is_not(org: Organisation) -> None:
    assert not rebind(org, "BR-DB01", "no-such-cas").ok
    unbound = one(org, Invocation("w", "Set-MailboxDatabase",
                                  {"Identity": "BR-DB01", "NoSuchParameter": "x"}))
    assert unbound.error is not None and unbound.error.category == "ParameterBindingException"
    found = search(org, {"Cmdlets": ["Set-MailboxDatabase"]})
    assert len(found.objects) == 1
    (entry,) = found.objects
    assert entry["Succeeded"] is False and "no-such-cas" in str(entry["Error"])


def test_another_administrator_is_logged_under_her_own_name(
    org: Organisation, clock: Clock
) -> None:
    earlier = datetime(2024, 4, 30, 17, 5, tzinfo=timezone.utc)
    run_as(org, ALICE, "Set-MailboxDatabase",
           {"Identity": "HQ-DB01", "RpcClientAccessServer": "hq-cas02.contoso.local"},
           run_date=earlier)
    (entry,) = search(org, {"UserIds": ["alice"]}).objects
    assert entry["Caller"] == "contoso.local/Users/alice"
    assert entry["RunDate"] == "2024-04-30T17:05:00.0000000Z"
    with pytest.raises(ValueError, match="future"):
        run_as(org, ALICE, "Set-MailboxDatabase", {"Identity": "HQ-DB01"},
               run_date=datetime(2024, 5, 2, tzinfo=timezone.utc))
    with pytest.raises(ExchangeError, match="not recognized"):
        run_as(org, ALICE, "Enter-CasdesiredLock", {"LockId": "x", "Owner": "a",
                                                   "LeaseSeconds": 1})


def test_disabled_excluded_or_unlisted_means_not_logged(org: Organisation) -> None:
    run_as(org, ALICE, "Set-AdminAuditLogConfig", {"AdminAuditLogExcludedCmdlets":
                                                    ["Set-Mailbox*"]})
    rebind(org, "BR-DB01", "outlook-hq.contoso.local")
    assert search(org, {"Cmdlets": ["Set-MailboxDatabase"]}).objects == ()
    run_as(org, ALICE, "Set-AdminAuditLogConfig", {"AdminAuditLogExcludedCmdlets": None,
                                                    "AdminAuditLogParameters": ["Fqdn"]})
    rebind(org, "BR-DB02", "outlook-hq.contoso.local")  # no parameter of it is listed
    assert search(org, {"Cmdlets": ["Set-MailboxDatabase"]}).objects == ()
    # Listing every parameter again is itself unlisted (only Fqdn is): not logged.
    run_as(org, ALICE, "Set-AdminAuditLogConfig", {"AdminAuditLogParameters": ["*"]})
    run_as(org, ALICE, "Set-AdminAuditLogConfig", {"AdminAuditLogEnabled": False})
    rebind(org, "BR-DB03", "outlook-hq.contoso.local")
    assert search(org, {"Cmdlets": ["Set-MailboxDatabase"]}).objects == ()
    # Turning logging off was logged (it was on when that ran); nothing since.
    changes = search(org, {"Cmdlets": ["Set-AdminAuditLogConfig"]}).objects
    assert [[p["Name"] for p in e["CmdletParameters"]] for e in changes] == [
        ["AdminAuditLogEnabled"],
        ["AdminAuditLogExcludedCmdlets", "AdminAuditLogParameters"],
        ["AdminAuditLogExcludedCmdlets"],
    ]
    assert org.snapshot()["admin_audit_log"]["config"]["enabled"] is False


def test_search_filters_page_and_return_newest_first(org: Organisation, clock: Clock) -> None:
    for day, db in enumerate(("BR-DB01", "BR-DB02", "BR-DB03"), start=1):
        run_as(org, ALICE, "Set-MailboxDatabase",
               {"Identity": db, "RpcClientAccessServer": "outlook-hq.contoso.local"},
               run_date=datetime(2024, 4, day, tzinfo=timezone.utc))
    run_as(org, "CONTOSO\\bob", "Set-ClientAccessServer",
           {"Identity": "HQ-CAS02", "AutoDiscoverSiteScope": ["HQ"]},
           run_date=datetime(2024, 4, 2, 12, tzinfo=timezone.utc))
    names = [e["ObjectModified"] for e in search(org).objects]
    assert names == ["BR-DB03", "HQ-CAS02", "BR-DB02", "BR-DB01"]
    assert [e["ObjectModified"] for e in search(org, {"ObjectIds": ["br-db02"]}).objects] == [
        "BR-DB02"]
    assert search(org, {"ObjectIds": ["BR-DB0"]}).objects == ()  # whole values, no prefix
    assert [e["ObjectModified"] for e in search(org, {"UserIds": ["bob"]}).objects] == [
        "HQ-CAS02"]
    assert [e["ObjectModified"] for e in search(
        org, {"StartIndex": 1, "ResultSize": 2}).objects] == ["HQ-CAS02", "BR-DB02"]
    window = search(org, {"StartDate": "2024-04-02T00:00:00Z", "EndDate": "2024-04-02T23:00:00Z"},
                    dates=("StartDate", "EndDate"))
    assert [e["ObjectModified"] for e in window.objects] == ["HQ-CAS02", "BR-DB02"]
    assert search(org, {"IsSuccess": False}).objects == ()
    too_small = search(org, {"ResultSize": 0})
    assert too_small.error is not None and "minimum allowed range of 1" in too_small.error.message


def test_without_result_size_at_most_1000_entries(org: Organisation) -> None:
    base = datetime(2024, 4, 1, tzinfo=timezone.utc)
    for minute in range(1001):
        run_as(org, ALICE, "Set-MailboxDatabase", {"Identity": "BR-DB01"},
               run_date=base + timedelta(minutes=minute))
    assert len(search(org, {"Cmdlets": ["Set-MailboxDatabase"]}).objects) == 1000
    everything = search(org, {"Cmdlets": ["Set-MailboxDatabase"], "ResultSize": 2000})
    assert len(everything.objects) == 1001


@pytest.mark.parametrize(
    ("culture", "text", "day"),
    [("en-US", "04/02/2024", 2), ("en-GB", "02/04/2024", 2), ("de-DE", "02.04.2024", 2),
     ("en-US", "04/02/2024 11:00:00 PM", 2)],
)
def test_a_date_as_text_is_read_in_the_servers_regional_format(
    org: Organisation, culture: str, text: str, day: int
) -> None:
    org.configure(server_culture=culture)
    run_as(org, ALICE, "Set-MailboxDatabase", {"Identity": "BR-DB01"},
           run_date=datetime(2024, 4, day, 23, 30, tzinfo=timezone.utc))
    found = search(org, {"StartDate": text})
    assert found.ok and len(found.objects) == 1


@pytest.mark.parametrize("culture", ["en-US", "en-GB", "de-DE"])
def test_dates_sent_as_dates_mean_the_same_instant_in_every_culture(
    org: Organisation, culture: str
) -> None:
    org.configure(server_culture=culture)
    run_as(org, ALICE, "Set-MailboxDatabase", {"Identity": "BR-DB01"},
           run_date=datetime(2024, 4, 5, 9, tzinfo=timezone.utc))
    # 5 April, whatever day-first or month-first the server reads text in.
    exact = search(org, {"StartDate": "2024-04-05T09:00:00Z", "EndDate": "2024-04-05T09:00:00Z"},
                   dates=("StartDate", "EndDate"))
    assert len(exact.objects) == 1
    # The same text without `dates` is text: the server's regional format refuses it.
    as_text = search(org, {"StartDate": "2024-04-05T09:00:00Z"})
    assert as_text.error is not None and "ExDateTime" in as_text.error.message
    bad = search(org, {"StartDate": "05/01/2024"}, dates=("StartDate",))
    assert bad.error is not None and bad.error.message == (
        "casdesired: '05/01/2024' is not a UTC time (yyyy-MM-ddTHH:mm:ssZ) for -StartDate.")


def test_entries_age_out_and_survive_a_reload(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "org.json"
    org = Organisation.from_file(path)
    org.clock = clock
    run_as(org, ALICE, "Set-MailboxDatabase", {"Identity": "BR-DB01"},
           run_date=datetime(2024, 1, 1, tzinfo=timezone.utc))  # 121 days before "now"
    run_as(org, ALICE, "Set-MailboxDatabase", {"Identity": "BR-DB02"},
           run_date=datetime(2024, 4, 1, tzinfo=timezone.utc))
    reloaded = Organisation.from_file(path)
    reloaded.clock = clock
    assert [e["ObjectModified"] for e in search(reloaded).objects] == ["BR-DB02"]
    run_as(reloaded, ALICE, "Set-AdminAuditLogConfig", {"AdminAuditLogAgeLimit": "10.00:00:00"})
    assert [e["ObjectModified"] for e in search(reloaded).objects] == ["Admin Audit Log Settings"]
    with pytest.raises(ExchangeError, match="EnhancedTimeSpan"):
        run_as(reloaded, ALICE, "Set-AdminAuditLogConfig", {"AdminAuditLogAgeLimit": "90 days"})


def test_without_the_view_only_audit_logs_role_the_search_does_not_exist(
    org: Organisation,
) -> None:
    org.configure(audit_search_role=False)
    refused = search(org)
    assert refused.error is not None and refused.error.category == "CommandNotFoundException"
    # The snap-in bypasses RBAC (and needs a logon that can delegate).
    org.logon = Logon(org.logon.user, org.logon.password, "credssp")
    assert search(org, exchange=ExchangeSession(mode="snapin")).ok


def test_the_control_api_runs_a_cmdlet_as_another_administrator(clock: Clock) -> None:
    org = Organisation.from_seed(clock=clock)
    with Lab(org, auth="ntlm") as lab:
        answer = requests.post(
            lab.control_url + "/cmdlet",
            json={"caller": ALICE, "cmdlet": "Set-MailboxDatabase",
                  "parameters": {"Identity": "HQ-DB01",
                                 "RpcClientAccessServer": "hq-cas02.contoso.local"},
                  "run_date": "2024-04-30T17:05:00Z"},
            headers={"X-Lab-Token": lab.token}, timeout=5, proxies={"http": "", "https": ""},
        )
        assert answer.status_code == 200 and answer.json()["ok"] is True
        failed = requests.post(
            lab.control_url + "/cmdlet",
            json={"caller": ALICE, "cmdlet": "Set-MailboxDatabase",
                  "parameters": {"Identity": "NO-SUCH-DB"}},
            headers={"X-Lab-Token": lab.token}, timeout=5, proxies={"http": "", "https": ""},
        )
        assert failed.status_code == 200 and failed.json()["ok"] is False
        assert "NO-SUCH-DB" in failed.json()["error"]["message"]
        bad = requests.post(lab.control_url + "/cmdlet", json={"cmdlet": "Set-MailboxDatabase"},
                            headers={"X-Lab-Token": lab.token}, timeout=5,
                            proxies={"http": "", "https": ""})
        assert bad.status_code == 400
    entries = org.snapshot()["admin_audit_log"]["entries"]
    assert [(e["caller"], e["object_modified"], e["succeeded"]) for e in entries] == [
        ("contoso.local/Users/alice", "HQ-DB01", True),
        ("contoso.local/Users/alice", "NO-SUCH-DB", False),
    ]
    db = next(d for d in org.snapshot()["databases"] if d["name"] == "HQ-DB01")
    assert "hq-cas02" in str(db).lower()

"""The lab answers the agent's probes and diagnose requests as the Windows host it describes.

``casdesired doctor`` relies on these answers; each switch that makes one of its checks fail is
seen here changing what the host reports (and what apply or plan would meet), through the same
door the WS-Man side uses (:func:`run_request`: the bootstrap, the agent, the request).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from casdesired.agent.delivery.stdin import BOOTSTRAP_SCRIPT, encode_stdin
from casdesired.agent.framing import decode_response
from casdesired.agent.protocol import Credential, ExchangeSession, Invocation, Request, Response
from casdesired.lab.exchange import Organisation
from casdesired.lab.exchange.testing import agent_script, run_request
from casdesired.lab.process import Logon
from casdesired.lab.wsman.limits import WinRMLimits

NLB = ("NetworkLoadBalancingClusters",)


@pytest.fixture
def org() -> Organisation:
    organisation = Organisation.from_seed()
    organisation.logon = Logon("CONTOSO\\casadmin", "Lab-pw-123", "ntlm")
    return organisation


def diagnose(org: Organisation, *invocations: Invocation, **changes: object) -> Response:
    request = replace(
        Request(invocations=invocations, modules=NLB, diagnose=True), **changes  # type: ignore[arg-type]
    )
    # run_request passes the account's credential unless the test chose one (None included).
    result = (
        org.run(BOOTSTRAP_SCRIPT, encode_stdin(agent_script(diagnose=True), request))
        if "credential" in changes else run_request(org, request)
    )
    assert result.exit_code == 0, result.stderr
    return decode_response(result.stdout)


def steps(response: Response) -> dict[str, tuple[bool, str]]:
    return {s.step: (s.ok, s.detail) for s in response.loading}


def one(response: Response, invocation_id: str) -> dict[str, object]:
    result = response.result(invocation_id)
    assert result is not None and result.ok, result
    (obj,) = result.objects
    return dict(obj)


HOST = Invocation("host", "Get-CasdesiredHost", {"Echo": "n0nce"},
                  ("PSVersion", "CLRVersion", "ExecutionPolicy", "ExecutionPolicies",
                   "GZipRoundTrip", "UtcNow", "Echo", "OperatingSystem", "JsonSerializer"))


def test_a_stock_host_reports_powershell_2_and_the_agents_bypass(org: Organisation) -> None:
    host = one(diagnose(org, HOST), "host")
    assert host["PSVersion"] == "2.0" and host["CLRVersion"].startswith("2.0.")  # type: ignore[union-attr]
    assert host["ExecutionPolicy"] == "Bypass" and host["Echo"] == "n0nce"
    assert host["GZipRoundTrip"] is True
    assert "System.Web.Extensions, Version=3.5.0.0" in str(host["JsonSerializer"])


def test_group_policy_beats_the_agents_execution_policy(org: Organisation) -> None:
    org.configure(host_execution_policy_gpo="AllSigned")
    host = one(diagnose(org, HOST), "host")
    assert host["ExecutionPolicy"] == "AllSigned"
    assert "MachinePolicy=AllSigned" in host["ExecutionPolicies"]  # type: ignore[operator]
    assert "Process=Bypass" in host["ExecutionPolicies"]  # type: ignore[operator]


def test_the_hosts_clock_runs_off_by_the_skew_and_so_do_its_lock_times(
    org: Organisation,
) -> None:
    before = one(diagnose(org, HOST), "host")["UtcNow"]
    org.configure(host_clock_skew_seconds=3600.0)
    after = one(diagnose(org, HOST), "host")["UtcNow"]
    assert str(after)[:13] > str(before)[:13]  # an hour ahead (to the hour digit)
    taken = run_request(org, Request(invocations=(Invocation(
        "l", "Enter-CasdesiredLock", {"LockId": "a-1", "Owner": "me", "LeaseSeconds": 900},
        ("Acquired",)),), exchange=ExchangeSession(mode="none")))
    acquired = decode_response(taken.stdout).results[0].objects[0]["Acquired"]
    assert str(acquired)[:13] == str(after)[:13]


def test_without_dotnet_35_the_agent_stops_before_reading_its_request(
    org: Organisation,
) -> None:
    org.configure(host_dotnet35=False)
    result = run_request(org, Request(invocations=(HOST,), diagnose=True))
    assert result.exit_code == 1 and "<casdesired-response>" not in result.stdout
    assert "Could not load file or assembly 'System.Web.Extensions" in result.stderr


def test_winrm_quotas_are_the_hosts_by_their_windows_names(org: Organisation) -> None:
    limits = WinRMLimits(max_memory_per_shell_mb=90)
    org.winrm_limits = limits
    config = one(diagnose(org, Invocation("w", "Get-CasdesiredWinRMConfig", {},
                                          ("MaxMemoryPerShellMB", "IdleTimeout"))), "w")
    assert config == {"MaxMemoryPerShellMB": "90", "IdleTimeout": "180000"}


def test_a_diagnose_request_reports_every_loading_step_and_removes_its_session(
    org: Organisation,
) -> None:
    response = diagnose(org, HOST)
    assert response.fatal is None
    found = steps(response)
    assert found["exchange-session"] == (True, "http://HQ-CAS01/PowerShell/")
    assert found["import-session"][0] and found["exchange-version"][0]
    assert found["recipient-scope"] == (True, "ViewEntireForest")
    assert found["module:NetworkLoadBalancingClusters"] == (True, "")
    assert found["exchange-session-removed"] == (True, "")
    assert org.exchange_sessions() == 0


def test_a_failed_step_is_reported_not_fatal_in_a_diagnose_request(org: Organisation) -> None:
    org.leak_exchange_sessions(18)
    response = diagnose(org, HOST)
    assert response.fatal is None
    ok, detail = steps(response)["exchange-session"]
    assert not ok and "maximum number of 18 concurrent shells" in detail
    assert response.result("host") is not None and response.result("host").ok  # type: ignore[union-attr]
    # Exchange's cmdlets are then simply not there.
    failed = diagnose(org, Invocation("s", "Get-ExchangeServer", {}, ("Name",)))
    assert "is not recognized" in failed.results[0].error.message  # type: ignore[union-attr]
    # The same failure in an ordinary request stops it, as before.
    plain = decode_response(run_request(org, Request(invocations=(HOST,))).stdout)
    assert plain.fatal is not None and "18 concurrent shells" in plain.fatal


def test_a_diagnose_request_runs_no_write_even_if_it_names_one(org: Organisation) -> None:
    write = Invocation("w", "Set-MailboxDatabase",
                       {"Identity": "HQ-DB01", "RpcClientAccessServer": "HQ-CAS02"})
    response = diagnose(org, write)
    assert not response.results[0].ok
    assert "is not a read command" in response.results[0].error.message  # type: ignore[union-attr]
    assert not [e for e in org.journal.entries(["cmdlet"]) if e["cmdlet"] == "Set-MailboxDatabase"]


COMMANDS = Invocation("c", "Get-CasdesiredCommand",
                      {"Name": ["Set-MailboxDatabase", "Set-ClientAccessServer", "Get-Mailbox"]},
                      ("Name", "Available", "Parameters"))


def test_rbac_hides_what_the_role_assignments_do_not_give_in_remote_sessions(
    org: Organisation,
) -> None:
    org.configure(rbac_not_granted=["Set-MailboxDatabase",
                                    "Set-ClientAccessServer -AutoDiscoverSiteScope"])
    result = diagnose(org, COMMANDS).result("c")
    assert result is not None
    found = {o["Name"]: o for o in result.objects}
    assert found["Set-MailboxDatabase"]["Available"] is False
    assert found["Set-ClientAccessServer"]["Available"] is True
    assert "AutoDiscoverSiteScope" not in found["Set-ClientAccessServer"]["Parameters"]  # type: ignore[operator]
    assert "AutoDiscoverServiceInternalUri" in found["Set-ClientAccessServer"]["Parameters"]  # type: ignore[operator]
    # And running them fails as the restricted session would.
    plain = decode_response(run_request(org, Request(invocations=(Invocation(
        "w", "Set-MailboxDatabase", {"Identity": "HQ-DB01", "RpcClientAccessServer": "HQ-CAS02"}
    ),))).stdout)
    assert "The term 'Set-MailboxDatabase' is not recognized" in plain.results[0].error.message  # type: ignore[union-attr]
    scoped = decode_response(run_request(org, Request(invocations=(Invocation(
        "w", "Set-ClientAccessServer", {"Identity": "HQ-CAS01", "AutoDiscoverSiteScope": ["HQ"]}
    ),))).stdout)
    assert "cannot be found that matches parameter name 'AutoDiscoverSiteScope'" in (
        scoped.results[0].error.message  # type: ignore[union-attr]
    )


def test_the_snapin_bypasses_rbac(org: Organisation) -> None:
    org.logon = Logon("CONTOSO\\casadmin", "Lab-pw-123", "credssp")
    org.configure(rbac_not_granted=["Set-MailboxDatabase"])
    result = diagnose(org, COMMANDS, exchange=ExchangeSession(mode="snapin")).result("c")
    assert result is not None and all(o["Available"] for o in result.objects)


def test_an_ungranted_recipient_scope_fails_its_step(org: Organisation) -> None:
    org.configure(rbac_not_granted=["Set-AdServerSettings"])
    ok, detail = steps(diagnose(org, HOST))["recipient-scope"]
    assert not ok and "The term 'Set-AdServerSettings' is not recognized" in detail


PORTS = ("ComputerName", "RpcTcpPort", "AddressBookPort")


def test_static_ports_come_from_each_servers_registry_with_the_requests_credential(
    org: Organisation,
) -> None:
    response = diagnose(
        org,
        Invocation("here", "Get-CasdesiredStaticPort", {"ComputerName": "HQ-CAS01"}, PORTS),
        Invocation("there", "Get-CasdesiredStaticPort",
                   {"ComputerName": "hq-cas02.contoso.local"}, PORTS, on_error="continue"),
    )
    assert one(response, "here")["RpcTcpPort"] == "REG_DWORD|59531"
    assert one(response, "there")["AddressBookPort"] == "REG_SZ|59532"
    # Without the credential, WMI to another computer is a second hop: refused.
    bare = diagnose(org, Invocation("there", "Get-CasdesiredStaticPort",
                                    {"ComputerName": "HQ-CAS02"}, PORTS),
                    credential=None)
    assert "E_ACCESSDENIED" in bare.results[0].error.message  # type: ignore[union-attr]
    wrong = diagnose(org, Invocation("there", "Get-CasdesiredStaticPort",
                                     {"ComputerName": "HQ-CAS02"}, PORTS),
                     credential=Credential("CONTOSO\\casadmin", "wrong"))
    assert "E_ACCESSDENIED" in wrong.results[0].error.message  # type: ignore[union-attr]


def test_an_unreachable_server_answers_neither_wmi_nor_winrm(org: Organisation) -> None:
    data = org.snapshot()
    for server in data["servers"]:
        if server["name"] == "HQ-CAS02":
            server["reachable"] = False
    org.load(data)
    response = diagnose(
        org,
        Invocation("wmi", "Get-CasdesiredStaticPort", {"ComputerName": "HQ-CAS02"}, PORTS,
                   on_error="continue"),
        Invocation("ps", "Get-NlbClusterNode", {}, ("Name",), computer="hq-cas02.contoso.local"),
    )
    assert "The RPC server is unavailable" in response.results[0].error.message  # type: ignore[union-attr]
    assert "WinRM cannot complete the operation" in response.results[1].error.message  # type: ignore[union-attr]


def test_a_server_without_the_nlb_module_fails_its_import(org: Organisation) -> None:
    data = org.snapshot()
    for server in data["servers"]:
        if server["name"] in ("HQ-CAS01", "BR-CAS01"):
            server["nlb_module"] = False
    org.load(data)
    response = diagnose(
        org, Invocation("n", "Get-NlbClusterNode", {}, ("Name",), computer="br-cas01.contoso.local")
    )
    ok, detail = steps(response)["module:NetworkLoadBalancingClusters"]
    assert not ok and "was not loaded because no valid module file was found" in detail
    assert "no valid module file" in response.results[0].error.message  # type: ignore[union-attr]
    plain = decode_response(run_request(org, Request(invocations=(HOST,), modules=NLB)).stdout)
    assert plain.fatal is not None and "NetworkLoadBalancingClusters" in plain.fatal


LOCK_DIR = Invocation("d", "Get-CasdesiredLockDirectory", {},
                      ("Directory", "Exists", "NearestExisting", "Writable", "User"))


def test_the_lock_directory_exists_once_a_lock_was_taken_and_says_who_asks(
    org: Organisation,
) -> None:
    before = one(diagnose(org, LOCK_DIR), "d")
    assert before == {"Directory": "C:\\ProgramData\\casdesired\\locks", "Exists": False,
                      "NearestExisting": "C:\\ProgramData", "Writable": True,
                      "User": "CONTOSO\\casadmin"}
    run_request(org, Request(invocations=(Invocation(
        "l", "Enter-CasdesiredLock", {"LockId": "a-1", "Owner": "me", "LeaseSeconds": 900}),),
        exchange=ExchangeSession(mode="none")))
    assert one(diagnose(org, LOCK_DIR), "d")["Exists"] is True


def test_a_lock_directory_the_account_may_not_write_refuses_the_lock_itself(
    org: Organisation,
) -> None:
    org.configure(lock_directory_writable=False)
    assert one(diagnose(org, LOCK_DIR), "d")["Writable"] is False
    taken = decode_response(run_request(org, Request(invocations=(Invocation(
        "l", "Enter-CasdesiredLock", {"LockId": "a-1", "Owner": "me", "LeaseSeconds": 900}),),
        exchange=ExchangeSession(mode="none"))).stdout)
    assert "Access to the path 'C:\\ProgramData\\casdesired\\locks\\organisation.lock' is " \
        "denied." in taken.results[0].error.message  # type: ignore[union-attr]


def test_the_probes_exist_only_when_the_agent_came_with_them(org: Organisation) -> None:
    request = Request(invocations=(HOST,), diagnose=True,
                      credential=Credential("CONTOSO\\casadmin", "Lab-pw-123"))
    plain = org.run(BOOTSTRAP_SCRIPT, encode_stdin(agent_script(), request))
    response = decode_response(plain.stdout)
    assert "The term 'Get-CasdesiredHost' is not recognized" in (
        response.results[0].error.message  # type: ignore[union-attr]
    )


def test_the_agents_probes_exist_only_where_the_agent_runs(org: Organisation) -> None:
    response = diagnose(org, Invocation("h", "Get-CasdesiredHost", {}, ("PSVersion",),
                                        computer="hq-cas02.contoso.local"))
    assert "The term 'Get-CasdesiredHost' is not recognized" in (
        response.results[0].error.message  # type: ignore[union-attr]
    )


@pytest.mark.parametrize(
    "setting, value",
    [("host_execution_policy_gpo", "Sometimes"), ("rbac_not_granted", ["Set MailboxDatabase"]),
     ("host_clock_skew_seconds", True), ("host_powershell_version", ""),
     ("lock_directory_writable", "no")],
)
def test_a_bad_switch_value_is_refused_and_changes_nothing(
    org: Organisation, setting: str, value: object
) -> None:
    with pytest.raises(ValueError, match=setting):
        org.configure(**{setting: value})
    assert org.behaviour.host_powershell_version == "2.0"

"""The lab's agent executor: the invocation semantics of agent.ps1, end to end through run()."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from casdesired.agent.delivery.stdin import BOOTSTRAP_SCRIPT, REQUEST_SEPARATOR
from casdesired.agent.framing import decode_response
from casdesired.agent.protocol import AGENT_MARKER, ExchangeSession, Invocation, Until
from casdesired.lab.exchange import Organisation, agent
from casdesired.lab.exchange.testing import call
from casdesired.lab.faults import CmdletFault
from casdesired.lab.process import Logon

AGENT_PS1 = Path(__file__).resolve().parents[2] / "casdesired" / "agent" / "agent.ps1"


@pytest.fixture
def org() -> Organisation:
    return Organisation.from_seed()


def test_properties_select_case_insensitively_and_leave_out_missing(org: Organisation) -> None:
    (result,) = call(org, Invocation("1", "Get-ClientAccessArray",
                                     {"Identity": "outlook-hq.contoso.local"},
                                     ("fqdn", "NoSuchProperty", "Members"))).results
    assert result.objects == ({"fqdn": "outlook-hq.contoso.local",
                               "Members": ["HQ-CAS01", "HQ-CAS02"]},)


def test_no_properties_means_empty_objects_as_in_agent_ps1(org: Organisation) -> None:
    (result,) = call(org, Invocation("1", "Get-ExchangeServer", {"Identity": "HQ-CAS01"})).results
    assert result.ok and result.objects == ({},)


def test_group_by_counts_and_empty_key_for_null(org: Organisation) -> None:
    (by_rpc,) = call(org, Invocation("g", "Get-MailboxDatabase", {},
                                     group_by="RpcClientAccessServer")).results
    assert by_rpc.groups == {"outlook-hq.contoso.local": 4, "hq-cas02.contoso.local": 2,
                             "br-cas01.contoso.local": 3, "outlook-dr.contoso.local": 3}
    assert by_rpc.objects == ()
    (missing,) = call(org, Invocation("g", "Get-MailboxDatabase", {}, group_by="Nope")).results
    assert missing.groups == {"": 12}


ADD_HQ_CAS02 = Invocation(
    "add", "Add-NlbClusterNode",
    {"InterfaceName": "NLB", "NewNodeName": "HQ-CAS02", "NewNodeInterface": "NLB"},
    ("State",), computer="hq-cas01.contoso.local",
)


def test_until_waits_for_a_cluster_to_reconverge(org: Organisation) -> None:
    org.configure(nlb_convergence_seconds=0.3)
    add, wait = call(
        org,
        ADD_HQ_CAS02,
        Invocation("wait", "Get-NlbClusterNode", {}, ("Name", "State"),
                   until=Until("State", ("Converged", "Converged(default)"), timeout_seconds=5,
                               interval_seconds=0.05),
                   computer="hq-cas01.contoso.local"),
    ).results
    assert add.objects == ({"State": "Converging"},)
    assert wait.ok, wait.error
    assert wait.objects == ({"Name": "HQ-CAS01", "State": "Converged"},
                            {"Name": "HQ-CAS02", "State": "Converged"})
    polls = [e for e in org.journal.entries(["cmdlet"]) if e["cmdlet"] == "Get-NlbClusterNode"]
    assert len(polls) >= 2  # it really polled


def test_until_times_out_with_agent_text_and_last_objects(org: Organisation) -> None:
    org.configure(nlb_convergence_seconds=60)
    response = call(
        org,
        ADD_HQ_CAS02,
        Invocation("wait", "Get-NlbClusterNode", {}, ("State",),
                   until=Until("State", ("Converged", "Stopped"), timeout_seconds=0.2,
                               interval_seconds=0.05),
                   computer="hq-cas01.contoso.local"),
        Invocation("after", "Get-NlbCluster"),
    )
    add, wait = response.results  # on_error stop: "after" never ran, so it has no result
    assert add.ok
    assert not wait.ok and wait.error is not None
    assert wait.error.message == (
        "casdesired: timed out after 0.2 seconds waiting for State to be one of: "
        "Converged, Stopped."
    )
    assert wait.objects == ({"State": "Converging"}, {"State": "Converging"})
    assert response.result("after") is None


def test_on_error_stop_leaves_later_invocations_without_result(org: Organisation) -> None:
    response = call(
        org,
        Invocation("1", "Set-MailboxDatabase", {"Identity": "HQ-DB05",
                                                "RpcClientAccessServer": "outlook-hq"}),
        Invocation("2", "Set-MailboxDatabase", {"Identity": "NO-SUCH-DB",
                                                "RpcClientAccessServer": "outlook-hq"}),
        Invocation("3", "Set-MailboxDatabase", {"Identity": "HQ-DB06",
                                                "RpcClientAccessServer": "outlook-hq"}),
    )
    assert [r.id for r in response.results] == ["1", "2"]
    assert response.result("3") is None
    assert response.results[0].ok and not response.results[1].ok
    names = [e["parameters"].get("Identity") for e in org.journal.entries(["cmdlet"])]
    assert "HQ-DB06" not in names  # never reached the server


def test_on_error_continue_runs_the_rest(org: Organisation) -> None:
    response = call(
        org,
        Invocation("1", "Get-MailboxDatabase", {"Identity": "NO-SUCH-DB"}, on_error="continue"),
        Invocation("2", "Get-MailboxDatabase", {"Identity": "HQ-DB01"}, ("Name",)),
    )
    assert [r.ok for r in response.results] == [False, True]


def test_a_cmdlet_name_that_is_not_verb_noun_is_refused(org: Organisation) -> None:
    (result,) = call(org, Invocation("1", "Get-Mailbox; Remove-Item C:\\")).results
    assert result.error is not None
    assert result.error.message == (
        "casdesired: 'Get-Mailbox; Remove-Item C:\\' is not a cmdlet name."
    )
    assert result.error.category == "RuntimeException"
    # Only the agent's own start reached the server: the version check, the recipient scope.
    assert [e["cmdlet"] for e in org.journal.entries(["cmdlet"])] == [
        "Get-ExchangeServer", "Set-AdServerSettings"
    ]


def test_unknown_cmdlet_and_error_action_from_request(org: Organisation) -> None:
    unknown, ignored = call(
        org,
        Invocation("1", "Get-Recipient", on_error="continue"),
        Invocation("2", "Get-ExchangeServer", {"Identity": "HQ-CAS01", "ErrorAction": "Ignore"},
                   ("Name",)),
    ).results
    assert unknown.error is not None and "'Get-Recipient' is not recognized" in (
        unknown.error.message)
    assert ignored.ok  # agent.ps1 overwrites ErrorAction; it never reaches the cmdlet


def test_exchange_cmdlets_need_an_exchange_session(org: Organisation) -> None:
    response = call(org, Invocation("1", "Get-ExchangeServer"),
                    exchange=ExchangeSession(mode="none"))
    assert response.exchange_version is None
    assert response.results[0].error is not None
    assert response.results[0].error.category == "CommandNotFoundException"


def test_remote_session_mode(org: Organisation) -> None:
    org.logon = Logon("CONTOSO\\svc", "s3cret-pw", "ntlm")
    remote = ExchangeSession(mode="remote", uri="http://hq-cas02.contoso.local/PowerShell/")
    ok = call(org, Invocation("1", "Get-ExchangeServer", {}, ("Name",)), exchange=remote)
    assert ok.fatal is None and len(ok.results[0].objects) == 8
    assert org.exchange_sessions() == 0  # removed when the run ended
    bad = call(org, Invocation("1", "Get-ExchangeServer"),
               exchange=ExchangeSession(mode="remote", uri="http://ghost.contoso.local/PowerShell/"))
    assert bad.fatal is not None and bad.fatal.startswith("Connecting to remote server ghost")
    assert bad.results == ()
    assert "s3cret-pw" not in repr(org.journal.entries())


def test_the_remote_session_needs_the_credential_inside_the_session(org: Organisation) -> None:
    # Field fact §1c: a non-delegating logon reaches /PowerShell only with explicit credentials.
    none = call(org, Invocation("1", "Get-ExchangeServer"), credential_password=None)
    assert none.fatal is not None and "errorcode 0x8009030e" in none.fatal
    wrong = call(org, Invocation("1", "Get-ExchangeServer"), credential_password="nope")
    assert wrong.fatal is not None and wrong.fatal.endswith(
        "Access is denied. For more information, see the about_Remote_Troubleshooting Help "
        "topic."
    )
    org.logon = Logon(org.logon.user, org.logon.password, "credssp")
    assert call(org, Invocation("1", "Get-ExchangeServer"), credential_password=None).fatal is None


def test_exchange_throttling_refuses_an_nineteenth_session(org: Organisation) -> None:
    # Field fact §5: PowerShellMaxConcurrency 18; leaked sessions last until the pool recycles.
    org.leak_exchange_sessions(18)
    refused = call(org, Invocation("1", "Get-ExchangeServer"))
    assert refused.fatal is not None and "maximum number of 18 concurrent shells" in refused.fatal
    org.leak_exchange_sessions(17)
    assert call(org, Invocation("1", "Get-ExchangeServer")).fatal is None
    assert org.exchange_sessions() == 17  # the run removed its own


def test_the_snapin_in_a_logon_that_cannot_delegate_fails_as_the_field_reports(
    org: Organisation,
) -> None:
    # Field fact §1a: the snap-in's AD driver binds to a DC as the caller, a second hop.
    snapin = ExchangeSession(mode="snapin")
    response = call(org, Invocation("1", "Get-ClientAccessArray", on_error="continue"),
                    Invocation("2", "Get-Mailbox", {"ResultSize": "Unlimited"}), exchange=snapin)
    arrays, mailboxes = response.results
    assert arrays.error is not None and arrays.error.message.startswith(
        "Active Directory operation failed on DC01.contoso.local."
    )
    assert mailboxes.error is not None and mailboxes.error.message.startswith(
        "Value cannot be null."
    )
    org.logon = Logon(org.logon.user, org.logon.password, "credssp")
    assert all(r.ok for r in call(org, Invocation("1", "Get-ClientAccessArray"),
                                  exchange=snapin).results)


def test_response_header(org: Organisation) -> None:
    response = call(org)
    assert (response.host, response.ps_version) == ("HQ-CAS01", "2.0")
    assert response.exchange_version == "Version 14.3 (Build 123.4)"


def test_exchange_2013_is_refused_before_any_invocation(org: Organisation) -> None:
    state = org.snapshot()
    for server in state["servers"]:
        if server["name"] == "HQ-CAS01":
            server["version"] = "Version 15.0 (Build 1497.2)"
    org.load(state)
    response = call(org, Invocation("1", "Get-ClientAccessArray"))
    assert response.fatal == (
        "Exchange Server 2013 or later detected on HQ-CAS01 (Version 15.0 (Build 1497.2)): "
        "casdesired manages Exchange 2010 only."
    )
    assert response.results == ()
    assert response.exchange_version == "Version 15.0 (Build 1497.2)"


def test_unknown_module_is_fatal(org: Organisation) -> None:
    response = call(org, Invocation("1", "Get-ExchangeServer"), modules=("FailoverClusters",))
    assert response.fatal == (
        "The specified module 'FailoverClusters' was not loaded because no valid module file "
        "was found in any module directory."
    )


@pytest.mark.parametrize(("payload", "fatal"), [
    ("%%%not base64%%%", "casdesired: the request is not valid base64 JSON."),
    (base64.b64encode(b'{"protocol": 7}').decode(),
     "casdesired: this agent speaks protocol 1, the request protocol 7."),
    (base64.b64encode(b'{"protocol": 1, "exchange": {"mode": "psexec"}}').decode(),
     "casdesired: unknown Exchange session mode 'psexec'."),
])
def test_bad_requests_are_fatal_with_agent_texts(org: Organisation, payload: str,
                                                 fatal: str) -> None:
    stdin = f"{AGENT_MARKER}\r\n{REQUEST_SEPARATOR}\r\n{payload}\r\n".encode("ascii")
    result = org.run(BOOTSTRAP_SCRIPT, stdin)
    assert result.exit_code == 0
    assert decode_response(result.stdout).fatal == fatal


def test_cmdlet_fault_fails_one_identity_only(org: Organisation) -> None:
    org.faults.update({"cmdlets": [{"cmdlet": "Set-MailboxDatabase", "identity": "hq-db05"}]})
    db5, db6 = call(
        org,
        Invocation("5", "Set-MailboxDatabase", {"Identity": "HQ-DB05",
                                                "RpcClientAccessServer": "outlook-hq"},
                   on_error="continue"),
        Invocation("6", "Set-MailboxDatabase", {"Identity": "HQ-DB06",
                                                "RpcClientAccessServer": "outlook-hq"}),
    ).results
    assert db5.error is not None
    assert db5.error.message == CmdletFault.message
    assert db5.error.category == "ADOperationException"
    assert db6.ok
    shown = {d["name"]: d["rpc_client_access_server"]["kind"]
             for d in org.snapshot()["databases"]}
    assert (shown["HQ-DB05"], shown["HQ-DB06"]) == ("server", "array")


def test_slow_cmdlet_fault_delays_without_failing(org: Organisation) -> None:
    org.faults.update({"cmdlets": [{"cmdlet": "Get-ClientAccessArray", "fail": False,
                                    "delay_seconds": 0.2}]})
    started = time.monotonic()
    (result,) = call(org, Invocation("1", "Get-ClientAccessArray", {}, ("Name",))).results
    assert result.ok and time.monotonic() - started >= 0.2


def test_journal_records_each_invocation_with_outcome(org: Organisation) -> None:
    call(org,
         Invocation("1", "Get-ClientAccessArray", {"Identity": "nope"}, on_error="continue"),
         Invocation("2", "Get-ClientAccessArray", {"Identity": "outlook-hq"}))
    entries = org.journal.entries(["cmdlet"])
    assert [(e["cmdlet"], e["ok"]) for e in entries] == [
        ("Get-ExchangeServer", True), ("Set-AdServerSettings", True),
        ("Get-ClientAccessArray", False), ("Get-ClientAccessArray", True)]
    assert entries[2]["parameters"] == {"Identity": "nope"}
    assert "couldn't be found" in entries[2]["error"]


@pytest.mark.skipif(not AGENT_PS1.exists(), reason="agent.ps1 not in this tree")
def test_agent_texts_match_agent_ps1() -> None:
    """The lab must say what the real agent says; agent.ps1 builds these texts in pieces."""
    source = AGENT_PS1.read_text(encoding="ascii")
    for fragment in ("casdesired: the request is not valid base64 JSON.",
                     "casdesired: timed out after $timeout seconds waiting for ",
                     "$untilProperty to be one of: ",
                     "casdesired: unknown Exchange session mode '$mode'.",
                     "casdesired: '$cmdlet' is not a cmdlet name.",
                     "Exchange Server 2013 or later detected on $endpointServer ($version): ",
                     "casdesired manages Exchange 2010 only.",
                     "^[A-Za-z]+-[A-Za-z0-9]+$"):
        assert fragment in source, fragment
    assert agent.EXCHANGE_TOO_NEW.startswith("Exchange Server 2013 or later detected on {host}")

"""Fan-out (``for_each``) through the real client against the lab: one invocation run once per
object of an earlier one, on the computer each names, each run with its own result id.

The Python side refuses a fan-out the agent would refuse before sending anything; the lab's
agent, sent one anyway (raw JSON over pywinrm), refuses it with agent.ps1's text and runs
nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, Literal

import pytest
import winrm

from casdesired.agent import fanout, framing, protocol
from casdesired.agent.delivery import stdin as stdin_delivery
from casdesired.agent.protocol import ForEach, Invocation
from casdesired.errors import ProtocolError
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.exchange.testing import agent_script
from casdesired.lab.server import Lab
from casdesired.transport.winrm import AgentClient

from .conftest import target_of

NLB_MODULES = ("NetworkLoadBalancingClusters",)
NOT_A_MEMBER = "The host '{host}' could not be found or is not a member of an NLB cluster."
SERVERS = Invocation("servers", "Get-ExchangeServer",
                     properties=("Name", "Fqdn", "IsClientAccessServer"))
ARRAYS = Invocation("arrays", "Get-ClientAccessArray", properties=("Name",))
CAS = ("br-cas01", "dr-cas01", "dr-cas02", "hq-cas01", "hq-cas02")


@pytest.fixture
def lab() -> Iterator[Lab]:
    org = Organisation.from_seed()
    with Lab(org, auth="ntlm", journal=org.journal) as server:
        yield server


def run(lab: Lab, *invocations: Invocation) -> protocol.Response:
    client = AgentClient(target_of(lab))
    response = client.run(client.make_request(invocations, modules=NLB_MODULES))
    assert client.executions == 1 and lab.journal.count("command") == 1
    return response


def clusters(on_error: Literal["stop", "continue"] = "continue", **where: Any) -> Invocation:
    return Invocation("nlb", "Get-NlbCluster", properties=("Name",), on_error=on_error,
                      for_each=ForEach("servers", "Fqdn", **where))


def test_each_run_has_its_own_id_and_runs_on_the_computer_its_object_names(lab: Lab) -> None:
    response = run(lab, SERVERS, clusters(where="isclientaccessserver", values=("true",)), ARRAYS)
    # Only the CAS servers (True, compared as text case-insensitively), in the objects' order;
    # <id>@<computer as the object holds it>.
    assert [r.id for r in response.results] == [
        "servers", *(f"nlb@{host}.contoso.local" for host in CAS), "arrays"
    ]
    runs = fanout.results(response, "nlb")
    # Each ran on its own node: each node answers for its own cluster (or for none).
    assert runs["br-cas01.contoso.local"].objects == ({"Name": "br-nlb.contoso.local"},)
    assert runs["hq-cas01.contoso.local"].objects == ({"Name": "hq-nlb.contoso.local"},)
    for host in ("dr-cas01", "dr-cas02", "hq-cas02"):
        error = runs[f"{host}.contoso.local"].error
        assert error is not None and error.message == NOT_A_MEMBER.format(host=host)
    assert response.results[-1].ok  # on_error continue: a failed run stops nothing


def test_on_error_stop_stops_at_the_first_failed_run(lab: Lab) -> None:
    response = run(lab, SERVERS, clusters("stop", where="IsClientAccessServer", values=("True",)),
                   ARRAYS)
    # br-cas01 answers, dr-cas01 is in no cluster: nothing after it runs, ARRAYS included.
    assert [(r.id, r.ok) for r in response.results] == [
        ("servers", True), ("nlb@br-cas01.contoso.local", True),
        ("nlb@dr-cas01.contoso.local", False),
    ]
    cmdlets = [e["cmdlet"] for e in lab.journal.entries(["cmdlet"])]
    assert cmdlets.count("Get-NlbCluster") == 2 and "Get-ClientAccessArray" not in cmdlets


def test_one_run_per_distinct_computer_and_only_the_objects_where_selects(lab: Lab) -> None:
    databases = Invocation("dbs", "Get-MailboxDatabase", properties=("Name", "Server"))
    nodes = Invocation("nodes", "Get-NlbClusterNode", properties=("Name",), on_error="continue",
                       for_each=ForEach("dbs", "server"))
    picked = Invocation("picked", "Get-NlbCluster", properties=("Name",),
                        for_each=ForEach("servers", "Fqdn", where="Name",
                                         values=("hq-cas01", "BR-CAS01", "NO-SUCH")))
    response = run(lab, databases, nodes, SERVERS, picked)
    hosting = [str(d["Server"]) for d in response.results[0].objects]
    assert len(hosting) > len(set(hosting)) > 1  # several databases per server
    assert list(fanout.results(response, "nodes")) == list(dict.fromkeys(hosting))
    assert list(fanout.results(response, "picked")) == [
        "br-cas01.contoso.local", "hq-cas01.contoso.local"
    ]


def test_a_fan_out_over_no_object_has_no_result_and_stops_nothing(lab: Lab) -> None:
    response = run(lab, SERVERS, clusters("stop", where="Name", values=("NO-SUCH",)), ARRAYS)
    assert [r.id for r in response.results] == ["servers", "arrays"]


def test_a_failed_source_fails_the_fan_out_once_without_running_it(lab: Lab) -> None:
    missing = Invocation("servers", "Get-ExchangeServer", {"Identity": "NO-SUCH"},
                         ("Name", "Fqdn", "IsClientAccessServer"), on_error="continue")
    response = run(lab, missing, clusters("stop"), ARRAYS)
    assert [(r.id, r.ok) for r in response.results] == [("servers", False), ("nlb", False)]
    error = response.results[1].error
    assert error is not None and error.message == fanout.SOURCE_FAILED.format(
        id="nlb", source="servers")
    assert error.message == (
        "casdesired: 'nlb' was not run: 'servers', whose objects it runs for, failed."
    )
    assert error.category == "RuntimeException"  # what `throw "text"` makes
    ran = [e["cmdlet"] for e in lab.journal.entries(["cmdlet"])]
    assert "Get-NlbCluster" not in ran


def test_an_object_naming_no_computer_fails_the_fan_out_once(lab: Lab) -> None:
    # No Exchange server has a NoSuchProperty: each object leaves it out.
    servers = Invocation("servers", "Get-ExchangeServer", properties=("Name", "NoSuchProperty"))
    fan = Invocation("nlb", "Get-NlbCluster", on_error="continue",
                     for_each=ForEach("servers", "NoSuchProperty"))
    response = run(lab, servers, fan, ARRAYS)
    assert [(r.id, r.ok) for r in response.results] == [
        ("servers", True), ("nlb", False), ("arrays", True)
    ]
    error = response.results[1].error
    assert error is not None
    assert error.message == "casdesired: 'nlb' was not run: an object of 'servers' has no " \
                            "NoSuchProperty."


def test_the_fence_is_checked_before_a_fanned_out_write(lab: Lab) -> None:
    client = AgentClient(target_of(lab))
    stop = Invocation("stop", "Stop-NlbClusterNode", {"Drain": True},
                      for_each=ForEach("servers", "Fqdn", where="Name", values=("HQ-CAS01",)))
    request = client.make_request((SERVERS, stop), modules=NLB_MODULES)
    response = client.run(replace(request, fence="not-the-lock"))
    assert [r.id for r in response.results] == ["servers"]
    assert response.stopped is not None and response.stopped.startswith(protocol.FENCED_PREFIX)
    assert response.stopped.startswith("casdesired: stopped before Stop-NlbClusterNode")
    assert "Stop-NlbClusterNode" not in [e["cmdlet"] for e in lab.journal.entries(["cmdlet"])]


GROUPS = Invocation("groups", "Get-Mailbox", {"ResultSize": "Unlimited"}, group_by="Database")
LATER = Invocation("later", "Get-ExchangeServer", properties=("Fqdn",))
REFUSED: list[tuple[str, tuple[Invocation, ...], protocol.Keepalive | None, str]] = [
    ("unknown", (clusters(),), None,
     "casdesired: invocation 'nlb' cannot run for each object of 'servers': it is not an "
     "earlier invocation of the request."),
    ("later", (Invocation("nlb", "Get-NlbCluster", for_each=ForEach("later", "Fqdn")), LATER),
     None,
     "casdesired: invocation 'nlb' cannot run for each object of 'later': it is not an earlier "
     "invocation of the request."),
    ("itself", (Invocation("nlb", "Get-NlbCluster", properties=("Fqdn",),
                           for_each=ForEach("nlb", "Fqdn")),), None,
     "casdesired: invocation 'nlb' cannot run for each object of 'nlb': it is not an earlier "
     "invocation of the request."),
    ("keepalive", (SERVERS,),
     protocol.Keepalive(Invocation("k", "Get-NlbCluster", for_each=ForEach("servers", "Fqdn")),
                        30),
     "casdesired: invocation 'k' cannot run for each object of 'servers': it is not an earlier "
     "invocation of the request."),
    ("fan-out of a fan-out", (SERVERS, clusters(),
                              Invocation("again", "Get-NlbCluster",
                                         for_each=ForEach("nlb", "Name"))), None,
     "casdesired: invocation 'again' cannot run for each object of 'nlb': it runs for each "
     "object of another invocation itself."),
    ("group_by", (GROUPS, Invocation("nlb", "Get-NlbCluster",
                                     for_each=ForEach("groups", "Database"))), None,
     "casdesired: invocation 'nlb' cannot run for each object of 'groups': it counts groups and "
     "returns no objects."),
    ("computer not read", (SERVERS, Invocation("nlb", "Get-NlbCluster",
                                               for_each=ForEach("servers", "Site"))), None,
     "casdesired: invocation 'nlb' cannot run for each object of 'servers': it does not return "
     "the property 'Site'."),
    ("where not read", (SERVERS, clusters(where="IsMailboxServer", values=("False",))), None,
     "casdesired: invocation 'nlb' cannot run for each object of 'servers': it does not return "
     "the property 'IsMailboxServer'."),
    ("own computer", (SERVERS, Invocation("nlb", "Get-NlbCluster", computer="hq-cas01",
                                          for_each=ForEach("servers", "Fqdn"))), None,
     "casdesired: invocation 'nlb' cannot run for each object of 'servers': the invocation "
     "names a computer of its own."),
]


@pytest.mark.parametrize(("invocations", "keepalive", "text"),
                         [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_the_python_side_refuses_a_bad_fan_out_and_sends_nothing(
    lab: Lab, invocations: tuple[Invocation, ...], keepalive: protocol.Keepalive | None,
    text: str,
) -> None:
    client = AgentClient(target_of(lab))
    with pytest.raises(ProtocolError) as refused:
        request = client.make_request(invocations, modules=NLB_MODULES)
        client.run(replace(request, keepalive=keepalive))
    assert str(refused.value) == text
    assert client.executions == 0 and lab.journal.count("command") == 0


def _raw(invocations: tuple[Invocation, ...], keepalive: protocol.Keepalive | None) -> str:
    """The request's JSON as a client that skips the checks would send it."""
    data: dict[str, Any] = {
        "protocol": protocol.PROTOCOL_VERSION, "exchange": {"mode": "remote"},
        "modules": list(NLB_MODULES), "invocations": [i.to_json() for i in invocations],
    }
    if keepalive is not None:
        data["keepalive"] = {"invocation": keepalive.invocation.to_json(), "interval_seconds": 30}
    return base64.b64encode(json.dumps(data).encode("utf-8")).decode("ascii")


@pytest.mark.parametrize(("invocations", "keepalive", "text"),
                         [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_the_lab_agent_refuses_a_bad_fan_out_with_agent_ps1s_text_and_runs_nothing(
    lab: Lab, invocations: tuple[Invocation, ...], keepalive: protocol.Keepalive | None,
    text: str,
) -> None:
    proto = winrm.Protocol(lab.url, transport="ntlm", username=lab.credentials.username,
                           password=lab.credentials.password, proxy=None,
                           ca_trust_path=None)
    stdin = (f"{agent_script().rstrip()}\r\n{stdin_delivery.REQUEST_SEPARATOR}\r\n"
             f"{_raw(invocations, keepalive)}\r\n").encode("ascii")
    shell = proto.open_shell(codepage=65001)
    try:
        executable, arguments = stdin_delivery.command_line()
        command = proto.run_command(shell, executable, arguments)
        proto.send_command_input(shell, command, stdin, end=True)
        out, _err, code = proto.get_command_output(shell, command)
        proto.cleanup_command(shell, command)
    finally:
        proto.close_shell(shell)
    assert code == 0
    response = framing.decode_response(out.decode("utf-8"))
    assert response.fatal == text and response.results == ()
    assert lab.journal.entries(["cmdlet"]) == []  # not even Exchange was loaded

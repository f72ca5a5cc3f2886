"""Windows NLB cmdlets as the field has them: module loading, the double hop, node states, a
drain that blocks, add and remove that make the cluster reconverge (exchange2010-field.md §1b,
§6).

Invocations run where casdesired runs them: on the node itself (``computer``: a PSSession the
agent opens with the account's credential), never through ``-HostName`` from another host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from casdesired.agent.protocol import ExchangeSession, Invocation, Result
from casdesired.lab.exchange import Organisation
from casdesired.lab.exchange.testing import call
from casdesired.lab.process import Logon

NODE = ("Name", "State", "InterfaceName", "HostPriority")
HQ = "hq-cas01.contoso.local"
BR = "br-cas01.contoso.local"


@dataclass
class FakeClock:
    """Wall and monotonic time that move only when the lab sleeps."""

    wall: float = 1_700_000_000.0
    mono: float = 0.0
    slept: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.wall += max(0.0, seconds)
        self.mono += max(0.0, seconds)


@pytest.fixture
def org() -> Organisation:
    organisation = Organisation.from_seed(clock=FakeClock())
    organisation.configure(object_cost_ms=0.0)  # only the NLB's own time on the fake clock
    return organisation


def clock(org: Organisation) -> FakeClock:
    assert isinstance(org.clock, FakeClock)
    return org.clock


def one(org: Organisation, cmdlet: str, params: dict[str, Any] | None = None,
        props: tuple[str, ...] = NODE, *, computer: str | None = None, **kw: Any) -> Result:
    invocation = Invocation("1", cmdlet, params or {}, props, computer=computer)
    (result,) = call(org, invocation, **kw).results
    return result


def nodes(org: Organisation, host: str = HQ) -> list[dict[str, Any]]:
    result = one(org, "Get-NlbClusterNode", computer=host)
    assert result.ok, result.error
    return [dict(o) for o in result.objects]


def test_nlb_cmdlets_need_the_module_imported(org: Organisation) -> None:
    result = one(org, "Get-NlbCluster", modules=())
    assert result.error is not None
    assert result.error.message.startswith(
        "The term 'Get-NlbCluster' is not recognized as the name of a cmdlet"
    )
    assert result.error.category == "CommandNotFoundException"


def test_seeded_clusters(org: Organisation) -> None:
    cluster = one(org, "Get-NlbCluster", props=("IPAddress", "SubnetMask", "Mode"), computer=HQ)
    assert cluster.objects == ({"IPAddress": "10.1.0.50", "SubnetMask": "255.255.255.0",
                                "Mode": "Unicast"},)
    assert nodes(org) == [{"Name": "HQ-CAS01", "State": "Converged", "InterfaceName": "NLB",
                           "HostPriority": 1}]
    assert [n["Name"] for n in nodes(org, BR)] == ["BR-CAS01"]
    default_host = one(org, "Get-NlbClusterNode")  # no -HostName: the local computer
    assert [o["Name"] for o in default_host.objects] == ["HQ-CAS01"]


def test_another_host_is_a_second_hop_the_logon_cannot_make(org: Organisation) -> None:
    # Field fact §1b: -HostName is WMI on that host; from the endpoint's WinRM logon (NTLM,
    # Kerberos without delegation) that is a second hop.
    denied = one(org, "Get-NlbClusterNode", {"HostName": "BR-CAS01"})
    assert denied.error is not None
    assert denied.error.message == (
        "Access is denied. (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))"
    )
    # On the node itself (a PSSession opened with explicit credentials) it works...
    assert one(org, "Get-NlbClusterNode", computer=BR).ok
    # ...and a session opened there is itself a network logon: no hop onwards.
    onwards = one(org, "Get-NlbClusterNode", {"HostName": "HQ-CAS01"}, computer=BR)
    assert onwards.error is not None and "E_ACCESSDENIED" in onwards.error.message
    # A logon that can delegate (CredSSP) reaches it directly.
    org.logon = Logon(org.logon.user, org.logon.password, "credssp")
    assert one(org, "Get-NlbClusterNode", {"HostName": "BR-CAS01"}).ok


def test_a_node_session_needs_the_accounts_credential(org: Organisation) -> None:
    org.logon = Logon(org.logon.user, "the-real-password", "ntlm")
    no_exchange = ExchangeSession(mode="none")  # only the node's session is at stake here
    wrong = call(org, Invocation("1", "Get-NlbClusterNode", computer=BR), credential_password="x",
                 exchange=no_exchange)
    (result,) = wrong.results
    assert result.error is not None
    assert result.error.message.startswith(
        f"Connecting to remote server {BR} failed with the following error message : Access is "
        "denied."
    )
    none = call(org, Invocation("1", "Get-NlbClusterNode", computer=BR), credential_password=None,
                exchange=no_exchange)
    (result,) = none.results
    assert result.error is not None and "errorcode 0x8009030e" in result.error.message


def test_dr_has_no_cluster(org: Organisation) -> None:
    result = one(org, "Get-NlbCluster", computer="dr-cas01.contoso.local")
    assert result.error is not None
    assert "is not a member of an NLB cluster" in result.error.message


def test_add_node_reconverges_the_cluster_with_the_next_priority(org: Organisation) -> None:
    org.configure(nlb_convergence_seconds=8.0)
    added = one(org, "Add-NlbClusterNode", {"InterfaceName": "NLB", "NewNodeName": "HQ-CAS02",
                                            "NewNodeInterface": "NLB"}, computer=HQ)
    assert added.ok, added.error
    assert added.objects[0]["State"] == "Converging"
    assert [(n["Name"], n["State"], n["HostPriority"]) for n in nodes(org)] == [
        ("HQ-CAS01", "Converging", 1), ("HQ-CAS02", "Converging", 2)
    ]
    clock(org).sleep(8.0)
    assert [n["State"] for n in nodes(org)] == ["Converged", "Converged"]
    again = one(org, "Add-NlbClusterNode", {"InterfaceName": "NLB", "NewNodeName": "HQ-CAS02",
                                            "NewNodeInterface": "NLB"}, computer=HQ)
    assert again.error is not None and "already a member" in again.error.message


def test_add_node_needs_mandatory_parameters_and_a_real_interface(org: Organisation) -> None:
    missing = one(org, "Add-NlbClusterNode", {"NewNodeName": "HQ-CAS02"})
    assert missing.error is not None
    assert missing.error.message.endswith("missing mandatory parameters: InterfaceName "
                                          "NewNodeInterface.")
    bad_if = one(org, "Add-NlbClusterNode", {"InterfaceName": "NLB", "NewNodeName": "HQ-CAS02",
                                             "NewNodeInterface": "Team9"})
    assert bad_if.error is not None
    assert bad_if.error.message == "The interface 'Team9' could not be found on host 'HQ-CAS02'."
    assert len(nodes(org)) == 1


def test_the_open_reading_that_add_reaches_the_new_node(org: Organisation) -> None:
    org.configure(nlb_add_reaches_new_node=True)
    denied = one(org, "Add-NlbClusterNode", {"InterfaceName": "NLB", "NewNodeName": "HQ-CAS02",
                                             "NewNodeInterface": "NLB"}, computer=HQ)
    assert denied.error is not None and "E_ACCESSDENIED" in denied.error.message


def test_stop_without_drain_stops_at_once_and_start_converges(org: Organisation) -> None:
    stopped = one(org, "Stop-NlbClusterNode", computer=HQ)
    assert stopped.objects[0]["State"] == "Stopped"
    assert nodes(org)[0]["State"] == "Stopped"
    started = one(org, "Start-NlbClusterNode", computer=HQ)
    assert started.objects[0]["State"] == "Converged"


def test_a_drain_blocks_until_drained_then_shows_stopped(org: Organisation) -> None:
    org.configure(nlb_drain_seconds=42.0)
    before = clock(org).wall
    stopping = one(org, "Stop-NlbClusterNode", {"Drain": True}, computer=BR)
    assert stopping.objects[0]["State"] == "Stopped"  # what the cmdlet returns, after the wait
    assert clock(org).wall - before == pytest.approx(42.0)


@pytest.mark.parametrize(("unit", "blocked"), [("minutes", 120.0), ("seconds", 2.0)])
def test_the_drain_timeout_cuts_the_drain_in_the_unit_the_open_switch_says(
    org: Organisation, unit: str, blocked: float
) -> None:
    org.configure(nlb_drain_seconds=3600.0, nlb_timeout_unit=unit)
    before = clock(org).wall
    result = one(org, "Stop-NlbClusterNode", {"Drain": True, "Timeout": 2}, computer=BR)
    assert result.objects[0]["State"] == "Stopped"
    assert clock(org).wall - before == pytest.approx(blocked)


def test_remove_node_needs_force_and_last_node_removes_cluster(org: Organisation) -> None:
    refused = one(org, "Remove-NlbClusterNode", computer=BR)
    assert refused.error is not None and "NonInteractive mode" in refused.error.message
    assert len(nodes(org, BR)) == 1
    removed = one(org, "Remove-NlbClusterNode", {"Force": True}, computer=BR)
    assert removed.ok, removed.error
    gone = one(org, "Get-NlbCluster", computer=BR)
    assert gone.error is not None


def test_windows_lets_the_last_converged_node_stop(org: Organisation) -> None:
    # The reconciler, not Windows, must avoid a cluster without a converged node.
    assert one(org, "Stop-NlbClusterNode", {"Drain": True}, computer=HQ).ok
    assert [n["State"] for n in nodes(org)] == ["Stopped"]


def test_switch_parameter_takes_only_booleans(org: Organisation) -> None:
    result = one(org, "Remove-NlbClusterNode", {"Force": "yes"}, computer=BR)
    assert result.error is not None
    assert "System.Management.Automation.SwitchParameter" in result.error.message


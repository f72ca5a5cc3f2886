"""Windows NLB cmdlets: module loading, node states, drain, add and remove."""

from __future__ import annotations

import time
from typing import Any

import pytest

from casdesired.agent.protocol import Invocation, Result
from casdesired.lab.exchange import Organisation
from casdesired.lab.exchange.testing import call

NODE = ("Name", "State", "InterfaceName", "HostPriority")


@pytest.fixture
def org() -> Organisation:
    return Organisation.from_seed()


def one(org: Organisation, cmdlet: str, params: dict[str, Any] | None = None,
        props: tuple[str, ...] = NODE, **kw: Any) -> Result:
    (result,) = call(org, Invocation("1", cmdlet, params or {}, props), **kw).results
    return result


def nodes(org: Organisation, host: str = "hq-cas01.contoso.local") -> list[dict[str, Any]]:
    result = one(org, "Get-NlbClusterNode", {"HostName": host})
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
    cluster = one(org, "Get-NlbCluster", {"HostName": "hq-cas01.contoso.local"},
                  ("IPAddress", "SubnetMask", "Mode"))
    assert cluster.objects == ({"IPAddress": "10.1.0.50", "SubnetMask": "255.255.255.0",
                                "Mode": "Unicast"},)
    assert nodes(org) == [{"Name": "HQ-CAS01", "State": "Converged", "InterfaceName": "NLB",
                           "HostPriority": 1}]
    assert [n["Name"] for n in nodes(org, "BR-CAS01")] == ["BR-CAS01"]
    default_host = one(org, "Get-NlbClusterNode")  # no -HostName: the local computer
    assert [o["Name"] for o in default_host.objects] == ["HQ-CAS01"]


def test_dr_has_no_cluster(org: Organisation) -> None:
    result = one(org, "Get-NlbCluster", {"HostName": "DR-CAS01"})
    assert result.error is not None
    assert "is not a member of an NLB cluster" in result.error.message


def test_add_node_converges_with_next_priority(org: Organisation) -> None:
    added = one(org, "Add-NlbClusterNode", {"HostName": "hq-cas01.contoso.local",
                                            "InterfaceName": "NLB", "NewNodeName": "HQ-CAS02",
                                            "NewNodeInterface": "NLB"})
    assert added.ok, added.error
    assert added.objects[0]["State"] == "Converged"
    assert [(n["Name"], n["HostPriority"]) for n in nodes(org)] == [("HQ-CAS01", 1),
                                                                     ("HQ-CAS02", 2)]
    again = one(org, "Add-NlbClusterNode", {"InterfaceName": "NLB", "NewNodeName": "HQ-CAS02",
                                            "NewNodeInterface": "NLB"})
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


def test_stop_without_drain_stops_at_once_and_start_converges(org: Organisation) -> None:
    stopped = one(org, "Stop-NlbClusterNode", {"HostName": "HQ-CAS01"})
    assert stopped.objects[0]["State"] == "Stopped"
    assert nodes(org)[0]["State"] == "Stopped"
    started = one(org, "Start-NlbClusterNode", {"HostName": "HQ-CAS01"})
    assert started.objects[0]["State"] == "Converged"


def test_drain_takes_the_configured_time(org: Organisation) -> None:
    org.configure(nlb_drain_seconds=0.3)
    stopping = one(org, "Stop-NlbClusterNode", {"HostName": "BR-CAS01", "Drain": True})
    assert stopping.objects[0]["State"] == "Draining"
    assert nodes(org, "BR-CAS01")[0]["State"] == "Draining"
    time.sleep(0.35)
    assert nodes(org, "BR-CAS01")[0]["State"] == "Stopped"


def test_drain_timeout_caps_the_drain(org: Organisation) -> None:
    org.configure(nlb_drain_seconds=3600)
    result = one(org, "Stop-NlbClusterNode", {"HostName": "BR-CAS01", "Drain": True,
                                              "Timeout": 0})
    assert result.objects[0]["State"] == "Stopped"


def test_remove_node_needs_force_and_last_node_removes_cluster(org: Organisation) -> None:
    refused = one(org, "Remove-NlbClusterNode", {"HostName": "BR-CAS01"})
    assert refused.error is not None and "NonInteractive mode" in refused.error.message
    assert len(nodes(org, "BR-CAS01")) == 1
    removed = one(org, "Remove-NlbClusterNode", {"HostName": "BR-CAS01", "Force": True})
    assert removed.ok, removed.error
    gone = one(org, "Get-NlbCluster", {"HostName": "BR-CAS01"})
    assert gone.error is not None


def test_windows_lets_the_last_converged_node_stop(org: Organisation) -> None:
    # The reconciler, not Windows, must avoid a cluster without a converged node.
    assert one(org, "Stop-NlbClusterNode", {"HostName": "HQ-CAS01", "Drain": True}).ok
    assert [n["State"] for n in nodes(org)] == ["Stopped"]


def test_switch_parameter_takes_only_booleans(org: Organisation) -> None:
    result = one(org, "Remove-NlbClusterNode", {"HostName": "BR-CAS01", "Force": "yes"})
    assert result.error is not None
    assert "System.Management.Automation.SwitchParameter" in result.error.message

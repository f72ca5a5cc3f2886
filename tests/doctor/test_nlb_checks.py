"""The NLB checks: the module, each declared cluster and its VIP, each node reached as apply
reaches it (a PSSession with your credential on that node), and their states."""

from __future__ import annotations

from typing import Any

from apply.labenv import Env

from doctor.helpers import Doctor, find, mutate, server


def _cluster(data: dict[str, Any], host: str) -> dict[str, Any]:
    return next(c for c in data["nlb_clusters"] if c["host"] == host)


def test_every_node_is_reached_on_itself_not_with_hostname(doctor: Doctor, env: Env) -> None:
    env.lab.journal.clear()
    _, report, _ = doctor.run()
    nodes = find(report, "nlb.nodes", "HQ")
    assert nodes["status"] == "PASS"
    assert any(e.startswith("HQ-CAS02: reached on hq-cas02.contoso.local through a PSSession")
               for e in nodes["evidence"])
    nlb_calls = [e for e in env.lab.journal.entries(["cmdlet"]) if "Nlb" in str(e["cmdlet"])]
    assert nlb_calls and all("HostName" not in e["parameters"] for e in nlb_calls)


def test_the_module_missing_on_the_endpoint_fails_with_the_feature_to_add(
    doctor: Doctor, env: Env
) -> None:
    mutate(env.organisation, lambda d: server(d, "HQ-CAS01").update(nlb_module=False))
    code, report, _ = doctor.run()
    module = find(report, "nlb.module")
    assert code == 1 and module["status"] == "FAIL"
    assert "no valid module file was found" in module["evidence"][0]
    assert "Add-WindowsFeature RSAT-NLB" in module["remedy"]
    # The cluster on its own host still answers (the module is there).
    assert find(report, "nlb.cluster", "Branch")["status"] == "PASS"


def test_a_vip_unlike_the_yamls_fails_the_cluster_check(doctor: Doctor, env: Env) -> None:
    mutate(env.organisation,
           lambda d: _cluster(d, "hq-cas01.contoso.local").update(ip_address="10.1.0.51"))
    code, report, _ = doctor.run()
    cluster = find(report, "nlb.cluster", "HQ")
    assert code == 1 and cluster["status"] == "FAIL"
    assert "the YAML's vip is 10.1.0.50, the cluster's IP address 10.1.0.51" in cluster["evidence"]
    assert "casdesired changes neither" in cluster["remedy"]


def test_no_cluster_on_the_cluster_host_fails_with_new_nlbcluster(
    doctor: Doctor, env: Env
) -> None:
    mutate(env.organisation, lambda d: d["nlb_clusters"].remove(
        _cluster(d, "br-cas01.contoso.local")))
    _, report, _ = doctor.run()
    cluster = find(report, "nlb.cluster", "Branch")
    assert cluster["status"] == "FAIL" and "New-NlbCluster" in cluster["remedy"]


def test_an_unreachable_member_fails_the_nodes_check(doctor: Doctor, env: Env) -> None:
    mutate(env.organisation, lambda d: server(d, "HQ-CAS02").update(reachable=False))
    code, report, _ = doctor.run()
    nodes = find(report, "nlb.nodes", "HQ")
    assert code == 1 and nodes["status"] == "FAIL"
    assert any("HQ-CAS02 (hq-cas02.contoso.local): Connecting to remote server" in e
               and "WinRM cannot complete the operation" in e for e in nodes["evidence"])
    assert "winrm quickconfig" in nodes["remedy"]


def test_a_stopped_node_is_a_warning_with_start_nlbclusternode(doctor: Doctor, env: Env) -> None:
    def stop_hq_cas01(data: dict[str, Any]) -> None:
        _cluster(data, "hq-cas01.contoso.local")["nodes"][0]["state"] = "Stopped"

    mutate(env.organisation, stop_hq_cas01)
    code, report, _ = doctor.run()
    nodes = find(report, "nlb.nodes", "HQ")
    assert code == 0 and nodes["status"] == "WARN"
    assert "HQ-CAS01 is Stopped" in nodes["evidence"]
    assert "Start-NlbClusterNode" in nodes["remedy"]

"""Windows NLB checks: the module, and each declared NLB array's cluster and nodes.

Every NLB step of apply runs on a node itself, through a PSSession the agent opens with your
credential (WMI to another host from inside WinRM is a second hop). doctor reaches each the
same way in its run: the cluster on its cluster host (``Get-NlbCluster``, ``Get-NlbClusterNode``)
and every server apply may run a step on (the declared members and the site's servers), with
``Get-NlbClusterNode`` run there. A PSSession that does not open is a node casdesired cannot
reach; an NLB answer, even "not a member of a cluster", proves the way works.
"""

from __future__ import annotations

from casdesired import model
from casdesired.desired.config import DesiredState
from casdesired.doctor import outcome
from casdesired.doctor.model import Check, Status, check, skipped
from casdesired.doctor.probe import (
    NlbArray,
    ProbeRun,
    nlb_arrays,
    nlb_cluster_id,
    nlb_member_id,
    nlb_nodes_id,
)
from casdesired.live.invocations import NLB_MODULE

UNREACHED = "PSRemotingTransportException"
"""The error category of a PSSession that could not be opened."""
INSTALL = (
    "On {host}, in an elevated PowerShell: 'Import-Module ServerManager; Add-WindowsFeature "
    "RSAT-NLB' (the NLB tools and their PowerShell module; an NLB node has them with the NLB "
    "feature)."
)
REACH = (
    "Make {host} reachable from the endpoint over WinRM with your account: 'winrm quickconfig' "
    "on it, the firewall open for 5985 from the endpoint, and the account a local "
    "administrator there."
)


def checks(run: ProbeRun, desired: DesiredState) -> list[Check]:
    arrays = nlb_arrays(desired)
    title = "the NetworkLoadBalancingClusters module loads"
    if not arrays:
        return [skipped("nlb.module", title,
                        "no present array declares a Windows NLB load balancer (type: nlb)")]
    if not run.ran:
        why = outcome.not_run(run.error)
        return [skipped("nlb.module", title, why), *(
            c for a in arrays for c in (
                skipped("nlb.cluster", _cluster_title(a), why, subject=a.site),
                skipped("nlb.nodes", _nodes_title(a), why, subject=a.site),
            )
        )]
    host = run.response.host if run.response else "the endpoint"
    step = run.step(f"module:{NLB_MODULE}")
    if step is not None and step.ok:
        module = check("nlb.module", title, Status.PASS,
                       (f"Import-Module {NLB_MODULE} worked on the endpoint {host}",))
    else:
        said = step.detail if step is not None else "not reported"
        module = check("nlb.module", title, Status.FAIL, (f"on the endpoint {host}: {said}",),
                       INSTALL.format(host=host), anchor="nlb-module")
    found = [module]
    for array in arrays:
        found += [_cluster(run, array), _nodes(run, array)]
    return found


def _cluster_title(array: NlbArray) -> str:
    return f"{array.fqdn}: the cluster on {array.cluster_host}, its VIP and interface"


def _nodes_title(array: NlbArray) -> str:
    return f"{array.fqdn}: every node reachable as apply reaches it, and converged"


def _cluster(run: ProbeRun, array: NlbArray) -> Check:
    title = _cluster_title(array)
    result = run.result(nlb_cluster_id(array.cluster_host))
    if result is None or not result.ok or not result.objects:
        error = result.error if result is not None else None
        said = error.message if error else "no cluster object"
        if error is not None and error.category == UNREACHED:
            remedy = REACH.format(host=array.cluster_host)
        elif error is not None and "no valid module file" in error.message:
            remedy = INSTALL.format(host=array.cluster_host)
        else:
            remedy = (f"Create the cluster on {array.cluster_host} (New-NlbCluster): casdesired "
                      "manages membership, not clusters; or correct load_balancer.cluster_host.")
        return check("nlb.cluster", title, Status.FAIL, (f"on {array.cluster_host}: {said}",),
                     remedy, subject=array.site, anchor="nlb-cluster")
    cluster = result.objects[0]
    ip = str(cluster.get("IPAddress") or "")
    facts = [
        f"cluster {cluster.get('Name')} on {array.cluster_host}, reached through a PSSession "
        "with your credential", f"its IP address {ip}, mode {cluster.get('Mode')}",
    ]
    problems = []
    if ip != array.vip:
        problems.append(f"the YAML's vip is {array.vip}, the cluster's IP address {ip}")
    nodes = run.result(nlb_nodes_id(array.cluster_host))
    own = [n for n in (nodes.objects if nodes is not None and nodes.ok else ())
           if model.key(str(n.get("Name"))) == model.key(array.cluster_host.split(".")[0])]
    if array.interface and own:
        live = str(own[0].get("InterfaceName") or "")
        facts.append(f"its interface on {array.cluster_host}: {live}")
        if model.key(live) != model.key(array.interface):
            problems.append(f"the YAML's interface is {array.interface}, the cluster host's "
                            f"{live}")
    if problems:
        return check("nlb.cluster", title, Status.FAIL, (*problems, *facts),
                     "Correct the array's load_balancer (vip, interface) in the site's YAML to "
                     "what the cluster has: casdesired changes neither.",
                     subject=array.site, anchor="nlb-cluster")
    return check("nlb.cluster", title, Status.PASS, facts, subject=array.site)


def _nodes(run: ProbeRun, array: NlbArray) -> Check:
    title = _nodes_title(array)
    nodes = run.result(nlb_nodes_id(array.cluster_host))
    if nodes is None or not nodes.ok:
        said = nodes.error.message if nodes is not None and nodes.error else "not run"
        return check("nlb.nodes", title, Status.FAIL,
                     (f"Get-NlbClusterNode on {array.cluster_host}: {said}",),
                     "See nlb.cluster.", subject=array.site, anchor="nlb-cluster")
    facts, unreached, stopped = [], [], []
    live = {model.key(str(n.get("Name"))): n for n in nodes.objects}
    for node in nodes.objects:
        state = str(node.get("State") or "")
        facts.append(f"node {node.get('Name')}: {state}")
        if not state.lower().startswith("converged"):
            stopped.append(f"{node.get('Name')} is {state}")
    reached = {model.key(name) for name, _ in array.reached}
    for name, fqdn in array.reached:
        result = run.result(nlb_member_id(name))
        if result is not None and result.ok:
            facts.append(f"{name}: reached on {fqdn} through a PSSession with your credential")
        elif result is not None and result.error and result.error.category == UNREACHED:
            unreached.append(f"{name} ({fqdn}): {result.error.message}")
        elif result is not None and result.error and "no valid module file" in (
            result.error.message
        ):
            unreached.append(f"{name} ({fqdn}): reached, but {result.error.message}")
        else:
            where = "a node" if model.key(name) in live else "not a node yet"
            facts.append(f"{name}: reached on {fqdn} through a PSSession with your credential "
                         f"({where}; apply adds members from the cluster host)")
    for key, node in live.items():
        if key not in reached and key != model.key(array.cluster_host.split(".")[0]):
            facts.append(f"{node.get('Name')} is a node but not declared: casdesired leaves it "
                         "alone (unless the site prunes), and did not check it")
    if unreached:
        return check("nlb.nodes", title, Status.FAIL, (*unreached, *facts),
                     REACH.format(host=", ".join(u.split(" ", 1)[0] for u in unreached))
                     + " A missing module: " + INSTALL.format(host="that server"),
                     subject=array.site, anchor="nlb-nodes")
    if stopped:
        return check("nlb.nodes", title, Status.WARN, (*stopped, *facts),
                     "casdesired never leaves a cluster without a converged node, and plans "
                     "around nodes that are out of service: bring one back on that node with "
                     "'Start-NlbClusterNode' if it should serve.",
                     subject=array.site, anchor="nlb-nodes")
    return check("nlb.nodes", title, Status.PASS, facts, subject=array.site)

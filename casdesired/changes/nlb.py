"""Windows NLB membership of a site's array: declared members join, leavers are drained.

Declared members missing live are added; a node that is a declared server of the site but not
in ``members`` is drained and removed (other undeclared nodes only with prune); the plan never
leaves a cluster without a node that is converged now and stays. The declared cluster's VIP and
interface are compared with the live one's (casdesired changes neither).
"""

from __future__ import annotations

from casdesired import model
from casdesired.changes.compare import compare
from casdesired.changes.context import DiffContext
from casdesired.changes.types import NlbNodeAdd, NlbNodeRemove
from casdesired.changes.unmanaged import Unmanaged
from casdesired.findings import Severity


def diff_nlb(d: DiffContext, site: model.Site) -> None:
    array = site.array
    if array is None or array.ensure is model.Ensure.ABSENT:
        return
    lb = array.load_balancer
    if lb is None or lb.kind is not model.LoadBalancerKind.NLB or not lb.cluster_host:
        return
    cluster = d.inp.nlb.get(model.key(lb.cluster_host))
    if cluster is None:
        d.finding(
            Severity.ERROR,
            "nlb-cluster-missing",
            f"no Windows NLB cluster answers on {lb.cluster_host} (array {array.fqdn}); "
            "casdesired manages NLB membership but does not create clusters: create it "
            "with New-NlbCluster first",
            site.name,
            lb.source or array.source,
        )
        return
    _nlb_facts(d, site, array, lb, cluster)
    comparison = compare({n.key: {} for n in lb.nodes}, {n.key: {} for n in cluster.nodes})
    for k in comparison.only_desired:
        node = next(n for n in lb.nodes if n.key == k)
        srv = d.desired_servers.get(k) or d.live.servers.get(k)
        # Two interfaces, two roles: -InterfaceName is the cluster's interface on the host
        # the cmdlet targets (declared, else as read); -NewNodeInterface is the joining
        # server's own adapter (declared per node, else the cluster's interface name, which
        # the hosts of one cluster usually share).
        cluster_interface = lb.interface or cluster.interface or ""
        node_interface = node.interface or cluster_interface
        d.changes.append(
            NlbNodeAdd(
                site=site.name,
                cluster_host=lb.cluster_host,
                interface=cluster_interface,
                server=node.server,
                server_fqdn=srv.fqdn if srv else node.server,
                node_interface=node_interface,
            )
        )
    # The declared members list is authoritative for the site's declared servers: one that
    # is a node but no longer a member is taken out. Other nodes are not ours unless pruned.
    declared_here = {srv.key for srv in site.servers}
    removed: set[str] = set()
    for k in comparison.only_live:
        node = next(n for n in cluster.nodes if n.key == k)
        if k in declared_here or d.prunes(site):
            srv = d.live.servers.get(k) or d.desired_servers.get(k)
            d.changes.append(
                NlbNodeRemove(
                    site=site.name,
                    cluster_host=lb.cluster_host,
                    server=node.server,
                    server_fqdn=srv.fqdn if srv else node.server,
                )
            )
            removed.add(k)
        else:
            d.unmanaged.append(
                Unmanaged(
                    "nlb_node",
                    node.server,
                    site.name,
                    f"node of the NLB cluster on {lb.cluster_host}, not a declared member",
                )
            )
    staying = [n for n in cluster.nodes if n.key not in removed and n.converged]
    if removed and not staying:
        d.finding(
            Severity.ERROR,
            "nlb-no-converged-node",
            f"the plan would leave the NLB cluster on {lb.cluster_host} (array {array.fqdn}) "
            "without a node that is converged now; bring a declared member to Converged "
            "(Start-NlbClusterNode) before removing the others",
            site.name,
            lb.source or array.source,
        )
    host_label = model.key(lb.cluster_host).split(".", 1)[0]
    if any(k.split(".", 1)[0] == host_label for k in removed):
        # The cluster is read, and waited on while it reconverges, on its cluster host.
        d.finding(
            Severity.ERROR,
            "nlb-cluster-host-removed",
            f"the plan would remove {lb.cluster_host} from its NLB cluster, but it is the "
            f"cluster_host of array {array.fqdn}, the node casdesired reads the cluster on and "
            "waits on while the others reconverge: name a member that stays as cluster_host "
            "first",
            site.name,
            lb.source or array.source,
        )


def _nlb_facts(
    d: DiffContext,
    site: model.Site,
    array: model.CasArray,
    lb: model.LoadBalancer,
    cluster: model.LoadBalancer,
) -> None:
    """The declared cluster's facts against the live one; casdesired changes neither.

    A VIP or interface that differs means the YAML describes another cluster than the one
    answering (or the cluster was reconfigured): membership changes made on that basis could
    be wrong, so the site is blocked. A declared member that is a node but not converged only
    warns: it is in the cluster, it just takes no traffic now.
    """
    where = lb.source or array.source
    if lb.vip and cluster.vip and model.key(lb.vip) != model.key(cluster.vip):
        d.finding(
            Severity.ERROR,
            "nlb-vip-mismatch",
            f"the NLB cluster on {lb.cluster_host} has VIP {cluster.vip}, but array "
            f"{array.fqdn} declares {lb.vip}; casdesired does not change cluster VIPs: "
            "correct the YAML, or the cluster (Add-NlbClusterVip / Set-NlbClusterVip), first",
            site.name,
            where,
        )
    if (
        lb.interface
        and cluster.interface
        and lb.interface.casefold() != cluster.interface.casefold()
    ):
        d.finding(
            Severity.ERROR,
            "nlb-interface-mismatch",
            f"the NLB cluster on {lb.cluster_host} runs on interface {cluster.interface}, "
            f"but array {array.fqdn} declares interface {lb.interface}; nodes would be "
            "added on the wrong interface: correct the YAML first",
            site.name,
            where,
        )
    declared = {n.key for n in lb.nodes}
    for node in cluster.nodes:
        if node.key in declared and not node.converged:
            d.finding(
                Severity.WARNING,
                "nlb-member-not-converged",
                f"{node.server}, a declared member of the NLB cluster on {lb.cluster_host}, "
                f"is {node.state or 'in an unknown state'}, not Converged: it takes no "
                "traffic (Start-NlbClusterNode, or Resume-NlbClusterNode if suspended)",
                site.name,
                where,
            )

"""Windows NLB's rules over the lab's clusters: membership, drain, and reconvergence.

Field facts (shared/domain/exchange2010-field.md §6): ``Stop-NlbClusterNode -Drain -Timeout``
lets existing connections finish and *blocks* until they have (or the timeout passed), then
the node is Stopped; a node joining or leaving makes the cluster reconverge over seconds, and
``Get-NlbClusterNode`` shows its converged nodes as Converging meanwhile. The unit of
``-Timeout`` is [OPEN] (a switch: ``nlb_timeout_unit``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.models import NlbCluster, NlbNode

if TYPE_CHECKING:
    from casdesired.lab.exchange.state import OrgState

CONVERGED = "Converged"
CONVERGING = "Converging"
DRAINING = "Draining"
STOPPED = "Stopped"


def _k(text: str) -> str:
    return text.strip().rstrip(".").lower()


def _not_found(host: str) -> err.NlbError:
    return err.NlbError(err.NLB_HOST_NOT_FOUND.format(host=host), target=host,
                        category="ObjectNotFound")


def cluster_of(state: OrgState, host: str) -> tuple[NlbCluster, NlbNode | None]:
    """The cluster that ``host`` (a server name or FQDN) belongs to, and its node there."""
    try:
        server = state.find_server(host)
    except err.ObjectNotFound:
        raise _not_found(host) from None
    for cluster in state.clusters.values():
        node = next((n for n in cluster.nodes if _k(n.name) == _k(server.name)), None)
        if node is not None:
            return cluster, node
        if _k(cluster.host) in (_k(host), _k(server.fqdn)):
            return cluster, None
    raise _not_found(host)


def node_of(state: OrgState, host: str) -> tuple[NlbCluster, NlbNode]:
    cluster, node = cluster_of(state, host)
    if node is None:
        raise _not_found(host)
    return cluster, node


def check_interface(state: OrgState, host: str, interface: str) -> None:
    server = state.find_server(host)
    if not any(_k(i) == _k(interface) for i in server.interfaces):
        raise err.NlbError(
            err.NLB_INTERFACE_NOT_FOUND.format(interface=interface, host=host),
            target=interface, category="ObjectNotFound",
        )


def shown_state(cluster: NlbCluster, node: NlbNode, now: float) -> str:
    """What Get-NlbClusterNode prints for ``node``: Converging while its cluster reconverges."""
    converging = cluster.converging_until is not None and cluster.converging_until > now
    if converging and node.state.lower().startswith("converged"):
        return CONVERGING
    return node.state


def _reconverge(state: OrgState, cluster: NlbCluster, now: float) -> None:
    seconds = state.settings.nlb_convergence_seconds
    cluster.converging_until = now + seconds if seconds > 0 else None


def add_node(
    state: OrgState, cluster: NlbCluster, new_node: str, interface: str, now: float
) -> NlbNode:
    try:
        server = state.find_server(new_node)
    except err.ObjectNotFound:
        raise _not_found(new_node) from None
    check_interface(state, server.name, interface)
    for other in state.clusters.values():
        if any(_k(n.name) == _k(server.name) for n in other.nodes):
            raise err.NlbError(err.NLB_ALREADY_MEMBER.format(host=new_node),
                               target=new_node, category="ResourceExists")
    used = {n.priority for n in cluster.nodes}
    priority = next(p for p in range(1, 33) if p not in used)
    node = NlbNode(name=server.name, state=CONVERGED, interface=interface, priority=priority)
    cluster.nodes.append(node)
    _reconverge(state, cluster, now)
    return node


def drain_seconds(state: OrgState, *, drain: bool, timeout: int | None) -> float:
    """How long a Stop-NlbClusterNode blocks: the drain, cut at its -Timeout (in the unit the
    ``nlb_timeout_unit`` switch reads it in)."""
    seconds = state.settings.nlb_drain_seconds if drain else 0.0
    if timeout is not None:
        unit = 60.0 if state.settings.nlb_timeout_unit == "minutes" else 1.0
        seconds = min(seconds, timeout * unit)
    return seconds


def stop_node(
    state: OrgState, node: NlbNode, *, drain: bool, timeout: int | None, now: float
) -> float:
    """Start stopping ``node``; the wall-clock time the cmdlet blocks until (now if it does
    not). The node is Draining until then, Stopped after (:func:`settle_clusters`)."""
    if node.state == STOPPED:
        return now
    seconds = drain_seconds(state, drain=drain, timeout=timeout)
    if seconds > 0:
        node.state, node.drain_until = DRAINING, now + seconds
        return now + seconds
    node.state, node.drain_until = STOPPED, None
    return now


def start_node(node: NlbNode) -> None:
    node.state, node.drain_until = CONVERGED, None


def remove_node(state: OrgState, cluster: NlbCluster, node: NlbNode, now: float) -> None:
    """Windows deletes the cluster with its last host; the others reconverge."""
    cluster.nodes.remove(node)
    if not cluster.nodes:
        del state.clusters[_k(cluster.host)]
        return
    _reconverge(state, cluster, now)


def settle_clusters(state: OrgState, now: float) -> bool:
    """Let time act: Draining nodes whose drain is over become Stopped, reconverged clusters
    stop converging. True if anything changed."""
    changed = False
    for cluster in state.clusters.values():
        if cluster.converging_until is not None and cluster.converging_until <= now:
            cluster.converging_until = None
            changed = True
        for node in cluster.nodes:
            if node.state == DRAINING and (node.drain_until or 0.0) <= now:
                node.state, node.drain_until = STOPPED, None
                changed = True
    return changed

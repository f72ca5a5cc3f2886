"""The Windows NLB cmdlets the lab offers (module NetworkLoadBalancingClusters)."""

from __future__ import annotations

from typing import Any

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.binding import CmdletContext, Obj
from casdesired.lab.exchange.models import NlbCluster, NlbNode


def node_object(cluster: NlbCluster, node: NlbNode) -> Obj:
    return {
        "Name": node.name,
        "State": node.state,
        "InterfaceName": node.interface,
        "HostPriority": node.priority,
        "Cluster": cluster.name,
    }


# ---------------------------------------------------------------------------- NLB
def _host(ctx: CmdletContext, args: dict[str, Any]) -> str:
    """-HostName, or the local computer (the endpoint host) as Windows defaults it."""
    host: str = args.get("HostName") or ctx.state.endpoint_host
    return host


def get_nlb_cluster(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    host = _host(ctx, args)
    cluster, _ = ctx.state.cluster_of(host)
    if "InterfaceName" in args:
        ctx.state.check_interface(host, args["InterfaceName"])
    return [{
        "Name": cluster.name,
        "IPAddress": cluster.ip_address,
        "SubnetMask": cluster.subnet_mask,
        "Mode": cluster.mode,
    }]


def get_nlb_cluster_node(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    host = _host(ctx, args)
    cluster, _ = ctx.state.cluster_of(host)
    if "InterfaceName" in args:
        ctx.state.check_interface(host, args["InterfaceName"])
    nodes = sorted(cluster.nodes, key=lambda n: n.priority)
    if "NodeName" in args:
        wanted = ctx.state.find_server(args["NodeName"]).name.lower()
        nodes = [n for n in nodes if n.name.lower() == wanted]
        if not nodes:
            raise err.NlbError(err.NLB_HOST_NOT_FOUND.format(host=args["NodeName"]),
                               target=args["NodeName"], category="ObjectNotFound")
    return [node_object(cluster, n) for n in nodes]


def add_nlb_cluster_node(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    host = _host(ctx, args)
    cluster, _ = ctx.state.cluster_of(host)
    ctx.state.check_interface(host, args["InterfaceName"])
    node = ctx.state.add_node(cluster, args["NewNodeName"], args["NewNodeInterface"])
    ctx.changed = True
    return [node_object(cluster, node)]


def stop_nlb_cluster_node(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    cluster, node = ctx.state.node_of(_host(ctx, args))
    ctx.state.stop_node(node, drain=bool(args.get("Drain")), timeout_minutes=args.get("Timeout"),
                        now=ctx.now)
    ctx.changed = True
    return [node_object(cluster, node)]


def start_nlb_cluster_node(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    cluster, node = ctx.state.node_of(_host(ctx, args))
    ctx.state.start_node(node)
    ctx.changed = True
    return [node_object(cluster, node)]


def remove_nlb_cluster_node(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    host = _host(ctx, args)
    cluster, node = ctx.state.node_of(host)
    if "InterfaceName" in args and args["InterfaceName"].lower() != node.interface.lower():
        raise err.NlbError(
            err.NLB_INTERFACE_NOT_FOUND.format(interface=args["InterfaceName"], host=host),
            target=args["InterfaceName"], category="ObjectNotFound",
        )
    if not args.get("Force"):
        raise err.PromptNotAvailable()
    ctx.state.remove_node(cluster, node)
    ctx.changed = True
    return []

"""The Windows NLB cmdlets the lab offers (module NetworkLoadBalancingClusters).

NLB management is WMI on the host a cmdlet names with ``-HostName`` (default: the computer it
runs on). From a session whose logon cannot delegate (NTLM, Kerberos without delegation, a
PSSession opened with explicit credentials), WMI to *another* host is a second hop and is
denied (field §1b): so the NLB steps must run on the node itself. The rules over the clusters
(drain, reconvergence) are in :mod:`.nlb_rules`.
"""

from __future__ import annotations

from typing import Any

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange import nlb_rules as rules
from casdesired.lab.exchange.binding import CmdletContext, Obj
from casdesired.lab.exchange.models import NlbCluster, NlbNode


def node_object(cluster: NlbCluster, node: NlbNode, now: float) -> Obj:
    return {
        "Name": node.name,
        "State": rules.shown_state(cluster, node, now),
        "InterfaceName": node.interface,
        "HostPriority": node.priority,
        "Cluster": cluster.name,
    }


def _same_computer(ctx: CmdletContext, host: str) -> bool:
    state = ctx.state
    try:
        return state.find_server(host).name.lower() == state.find_server(
            ctx.session.computer
        ).name.lower()
    except err.ObjectNotFound:
        return host.strip().rstrip(".").lower() == ctx.session.computer.lower()


def _reach(ctx: CmdletContext, host: str) -> None:
    """WMI on ``host``: refused as a second hop unless it is this computer or the logon can
    delegate."""
    if not ctx.session.delegates and not _same_computer(ctx, host):
        raise err.NlbError(err.ACCESS_DENIED, target=host, category="UnauthorizedAccess")


def _host(ctx: CmdletContext, args: dict[str, Any]) -> str:
    """-HostName, or the computer the cmdlet runs on (as Windows defaults it)."""
    host: str = args.get("HostName") or ctx.session.computer or ctx.state.endpoint_host
    _reach(ctx, host)
    return host


def get_nlb_cluster(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    host = _host(ctx, args)
    cluster, _ = rules.cluster_of(ctx.state, host)
    if "InterfaceName" in args:
        rules.check_interface(ctx.state, host, args["InterfaceName"])
    return [{
        "Name": cluster.name,
        "IPAddress": cluster.ip_address,
        "SubnetMask": cluster.subnet_mask,
        "Mode": cluster.mode,
    }]


def get_nlb_cluster_node(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    host = _host(ctx, args)
    cluster, _ = rules.cluster_of(ctx.state, host)
    if "InterfaceName" in args:
        rules.check_interface(ctx.state, host, args["InterfaceName"])
    nodes = sorted(cluster.nodes, key=lambda n: n.priority)
    if "NodeName" in args:
        wanted = ctx.state.find_server(args["NodeName"]).name.lower()
        nodes = [n for n in nodes if n.name.lower() == wanted]
        if not nodes:
            raise err.NlbError(err.NLB_HOST_NOT_FOUND.format(host=args["NodeName"]),
                               target=args["NodeName"], category="ObjectNotFound")
    return [node_object(cluster, n, ctx.now) for n in nodes]


def add_nlb_cluster_node(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    host = _host(ctx, args)
    if ctx.state.settings.nlb_add_reaches_new_node:
        _reach(ctx, args["NewNodeName"])
    cluster, _ = rules.cluster_of(ctx.state, host)
    rules.check_interface(ctx.state, host, args["InterfaceName"])
    node = rules.add_node(ctx.state, cluster, args["NewNodeName"], args["NewNodeInterface"],
                          ctx.now)
    ctx.changed = True
    return [node_object(cluster, node, ctx.now)]


def stop_nlb_cluster_node(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    """Blocks until the node drained (or -Timeout passed), then shows it Stopped."""
    host = _host(ctx, args)
    cluster, node = rules.node_of(ctx.state, host)
    until = rules.stop_node(ctx.state, node, drain=bool(args.get("Drain")),
                            timeout=args.get("Timeout"), now=ctx.now)
    ctx.changed = True
    if until > ctx.now:
        ctx.block_until = until

        def after() -> list[Obj]:
            found, stopped = rules.node_of(ctx.state, host)
            return [node_object(found, stopped, until)]

        ctx.after_block = after
        return []
    return [node_object(cluster, node, ctx.now)]


def start_nlb_cluster_node(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    cluster, node = rules.node_of(ctx.state, _host(ctx, args))
    rules.start_node(node)
    ctx.changed = True
    return [node_object(cluster, node, ctx.now)]


def remove_nlb_cluster_node(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    host = _host(ctx, args)
    cluster, node = rules.node_of(ctx.state, host)
    if "InterfaceName" in args and args["InterfaceName"].lower() != node.interface.lower():
        raise err.NlbError(
            err.NLB_INTERFACE_NOT_FOUND.format(interface=args["InterfaceName"], host=host),
            target=args["InterfaceName"], category="ObjectNotFound",
        )
    if not args.get("Force"):
        raise err.PromptNotAvailable()
    rules.remove_node(ctx.state, cluster, node, ctx.now)
    ctx.changed = True
    return []

"""The invocations of a full read of the live organisation, and what each one reads."""

from __future__ import annotations

from collections.abc import Iterable

from casdesired import model
from casdesired.agent import protocol

NLB_MODULE = "NetworkLoadBalancingClusters"

SERVERS = "read:servers"
CAS = "read:client-access"
ARRAYS = "read:arrays"
DATABASES = "read:databases"


def describe_read(invocation_id: str) -> str:
    """What an invocation of a read reads, for messages."""
    fixed = {
        SERVERS: "the Exchange servers (Get-ExchangeServer)",
        CAS: "the Client Access servers (Get-ClientAccessServer)",
        ARRAYS: "the Client Access arrays (Get-ClientAccessArray)",
        DATABASES: "the mailbox databases (Get-MailboxDatabase)",
    }
    if invocation_id in fixed:
        return fixed[invocation_id]
    kind, _, host = invocation_id.removeprefix("read:").partition(":")
    return f"the NLB cluster on {host}" if kind == "nlb-cluster" else f"the NLB nodes of {host}"


def nlb_cluster_id(host: str) -> str:
    return f"read:nlb-cluster:{model.key(host)}"


def nlb_nodes_id(host: str) -> str:
    return f"read:nlb-nodes:{model.key(host)}"


def unique_hosts(nlb_hosts: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for host in nlb_hosts:
        seen.setdefault(model.key(host), host)
    return list(seen.values())


def read_invocations(nlb_hosts: Iterable[str] = ()) -> tuple[protocol.Invocation, ...]:
    """The invocations of a full read; each stops the run if it fails."""
    invocations = [
        protocol.Invocation(
            SERVERS,
            "Get-ExchangeServer",
            properties=("Name", "Fqdn", "Site", "AdminDisplayVersion", "ServerRole"),
        ),
        protocol.Invocation(
            CAS,
            "Get-ClientAccessServer",
            properties=(
                "Name",
                "Fqdn",
                "AutoDiscoverServiceInternalUri",
                "AutoDiscoverSiteScope",
            ),
        ),
        protocol.Invocation(
            ARRAYS, "Get-ClientAccessArray", properties=("Name", "Fqdn", "Site", "Members")
        ),
        protocol.Invocation(
            DATABASES,
            "Get-MailboxDatabase",
            properties=("Name", "Server", "RpcClientAccessServer"),
        ),
    ]
    for host in unique_hosts(nlb_hosts):
        # On the cluster host itself, not with -HostName: WMI to another host from inside
        # a WinRM session is a second hop (field §1b).
        invocations.append(
            protocol.Invocation(
                nlb_cluster_id(host),
                "Get-NlbCluster",
                properties=("Name", "IPAddress", "SubnetMask", "Mode"),
                computer=host,
            )
        )
        invocations.append(
            protocol.Invocation(
                nlb_nodes_id(host),
                "Get-NlbClusterNode",
                properties=("Name", "State", "InterfaceName"),
                computer=host,
            )
        )
    return tuple(invocations)


def read_modules(nlb_hosts: Iterable[str] = ()) -> tuple[str, ...]:
    """PowerShell modules a read needs (2.0 does not auto-load NLB's)."""
    return (NLB_MODULE,) if unique_hosts(nlb_hosts) else ()

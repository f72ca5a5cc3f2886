"""Windows NLB membership changes: a CAS joins its array's cluster, or is drained out of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from casdesired.agent.protocol import Invocation, JsonValue, Until
from casdesired.changes.types.base import Action, Change

NLB_MODULE = "NetworkLoadBalancingClusters"
"""PowerShell 2.0 does not auto-load modules: requests with NLB invocations must import this."""

DEFAULT_DRAIN_TIMEOUT_MINUTES = 10
"""How long ``Stop-NlbClusterNode -Drain`` lets existing connections finish (its -Timeout).
[OPEN] the unit (minutes in one help version, seconds in another): casdesired's own wait for
``Stopped`` has its own deadline either way."""

CONVERGED_STATES = ("Converged", "Converged(default)")
"""What ``Get-NlbClusterNode`` prints for a node in service (field §6)."""
CONVERGENCE_TIMEOUT_SECONDS = 90.0
"""How long to wait for a cluster to reconverge after a node joined or left (~10 s usual)."""
CONVERGENCE_POLL_SECONDS = 1.0


def converged_wait(change_id: str, computer: str) -> Invocation:
    """Wait, on ``computer`` (a node of the cluster), until every node is Converged again."""
    return Invocation(
        id=change_id,
        cmdlet="Get-NlbClusterNode",
        properties=("Name", "State"),
        until=Until(
            property="State",
            values=CONVERGED_STATES,
            timeout_seconds=CONVERGENCE_TIMEOUT_SECONDS,
            interval_seconds=CONVERGENCE_POLL_SECONDS,
        ),
        computer=computer,
    )


class _NodeChange(Change):
    """What a change of one node's membership is: the node on its cluster, reached through
    the NLB module, about the server by name and by FQDN."""

    cluster_host: str
    server: str
    server_fqdn: str

    @property
    def identity(self) -> str:
        return f"{self.cluster_host}/{self.server}"

    @property
    def modules(self) -> tuple[str, ...]:
        return (NLB_MODULE,)

    @property
    def subjects(self) -> frozenset[str]:
        return frozenset(
            name.strip().rstrip(".").lower()
            for name in (self.identity, self.server, self.server_fqdn)
        )


@dataclass(frozen=True)
class NlbNodeAdd(_NodeChange):
    """``Add-NlbClusterNode``: a CAS joins its array's Windows NLB cluster."""

    kind: ClassVar[str] = "nlb_node_add"
    action: ClassVar[Action] = Action.CREATE
    order: ClassVar[int] = 1
    needs_exchange: ClassVar[bool] = False

    cluster_host: str
    interface: str
    server: str
    server_fqdn: str
    node_interface: str

    def before(self) -> dict[str, JsonValue] | None:
        return None

    def after(self) -> dict[str, JsonValue] | None:
        return {"cluster_host": self.cluster_host, "node": self.server}

    def describe(self) -> str:
        return f"add {self.server} to the NLB cluster on {self.cluster_host}"

    def steps(self) -> list[tuple[str, float | None]]:
        return [
            (f"add {self.server} to the NLB cluster on {self.cluster_host}", None),
            (f"wait for the NLB cluster on {self.cluster_host} to reconverge",
             CONVERGENCE_TIMEOUT_SECONDS),
        ]

    def invocations(self) -> list[Invocation]:
        # On the cluster host itself, not through -HostName: WMI to another host from inside
        # a WinRM session is a second hop (field §1b). Then the cluster reconverges.
        return [
            Invocation(
                id=self._id(),
                cmdlet="Add-NlbClusterNode",
                parameters={
                    "InterfaceName": self.interface,
                    "NewNodeName": self.server_fqdn,
                    "NewNodeInterface": self.node_interface,
                },
                properties=("Name", "State"),
                computer=self.cluster_host,
            ),
            converged_wait(self._id("converged"), self.cluster_host),
        ]


@dataclass(frozen=True)
class NlbNodeRemove(_NodeChange):
    """Drain, wait until stopped, then remove a node from its NLB cluster.

    Draining first lets existing RPC connections finish; removing a converged node would cut
    its users off mid-session.
    """

    kind: ClassVar[str] = "nlb_node_remove"
    action: ClassVar[Action] = Action.DELETE
    order: ClassVar[int] = 5
    needs_exchange: ClassVar[bool] = False

    cluster_host: str
    server: str
    server_fqdn: str
    drain_timeout_minutes: int = DEFAULT_DRAIN_TIMEOUT_MINUTES

    def before(self) -> dict[str, JsonValue] | None:
        return {"cluster_host": self.cluster_host, "node": self.server}

    def after(self) -> dict[str, JsonValue] | None:
        return None

    def describe(self) -> str:
        return (
            f"drain and remove {self.server} from the NLB cluster on {self.cluster_host} "
            f"(drain timeout {self.drain_timeout_minutes} min)"
        )

    def steps(self) -> list[tuple[str, float | None]]:
        # Stop-NlbClusterNode -Drain blocks until drained or its -Timeout, whose unit is [OPEN]:
        # minutes, the longer reading, bounds it.
        return [
            (f"drain {self.server} (drain timeout {self.drain_timeout_minutes} min)",
             float(self.drain_timeout_minutes * 60)),
            (f"wait until {self.server} is Stopped", self._stopped_wait_seconds),
            (f"remove {self.server} from the NLB cluster on {self.cluster_host}", None),
            (f"wait for the NLB cluster on {self.cluster_host} to reconverge",
             CONVERGENCE_TIMEOUT_SECONDS),
        ]

    @property
    def _stopped_wait_seconds(self) -> float:
        """A little longer than the drain itself before calling it a failure."""
        return float(self.drain_timeout_minutes * 60 + 60)

    def invocations(self) -> list[Invocation]:
        # Each step on the node itself (WMI to another host is a second hop, field §1b):
        # drain, wait until stopped (a little longer than the drain itself before calling it a
        # failure), remove; then the cluster host waits for the others to reconverge.
        wait_seconds = self._stopped_wait_seconds
        return [
            Invocation(
                id=self._id("drain"),
                cmdlet="Stop-NlbClusterNode",
                parameters={"Drain": True, "Timeout": self.drain_timeout_minutes},
                computer=self.server_fqdn,
            ),
            Invocation(
                id=self._id("wait"),
                cmdlet="Get-NlbClusterNode",
                parameters={"NodeName": self.server},
                properties=("Name", "State"),
                until=Until(property="State", values=("Stopped",), timeout_seconds=wait_seconds),
                computer=self.server_fqdn,
            ),
            Invocation(
                id=self._id("remove"),
                cmdlet="Remove-NlbClusterNode",
                parameters={"Force": True},
                computer=self.server_fqdn,
            ),
            converged_wait(self._id("converged"), self.cluster_host),
        ]

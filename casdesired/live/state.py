"""The live organisation as one read reported it: the shared model plus what only the live side
knows (the NLB clusters read, the host the agent ran on, every server's roles), and a
fingerprint over all of it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from casdesired import model


@dataclass
class LiveState:
    """The organisation as Exchange (and Windows NLB) reported it in one read."""

    estate: model.Estate
    nlb: dict[str, model.LoadBalancer] = field(default_factory=dict)
    """NLB clusters read, keyed by ``model.key(cluster host)``."""
    host: str = ""
    """The Windows host the agent ran on."""
    exchange_version: str | None = None
    """AdminDisplayVersion of the Exchange server the agent talked to."""
    exchange_roles: dict[str, str] = field(default_factory=dict)
    """``ServerRole`` of every Exchange server by server key, CAS or not: lets the plan say a
    declared server lacks the Client Access role instead of "unknown". Not fingerprinted: the
    servers that matter are in ``estate``."""

    def fingerprint(self) -> str:
        """sha256 of a canonical JSON of everything read (stable whatever the read order)."""
        text = json.dumps(_canonical(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(state: LiveState) -> dict[str, Any]:
    e = state.estate

    def lb(b: model.LoadBalancer | None) -> Any:
        if b is None:
            return None
        return {
            "kind": b.kind.value,
            "vip": b.vip,
            "cluster_host": b.cluster_host,
            "interface": b.interface,
            "nodes": [[n.server, n.interface, n.state] for n in b.nodes],
        }

    return {
        "sites": sorted(e.sites),
        "servers": {
            k: [
                s.name,
                s.fqdn,
                s.site,
                s.autodiscover_internal_uri,
                list(s.autodiscover_site_scope or ()),
                s.version,
            ]
            for k, s in e.servers.items()
        },
        "arrays": {
            k: [a.fqdn, a.name, a.site, sorted(a.members), lb(a.load_balancer)]
            for k, a in e.arrays.items()
        },
        "databases": {
            k: [d.database, d.rpc_client_access_server, d.server, d.mailbox_count]
            for k, d in e.databases.items()
        },
        "nlb": {k: lb(b) for k, b in state.nlb.items()},
    }

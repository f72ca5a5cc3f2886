"""After applying: does the live organisation now show what each applied change promised?

Two checks, both on a fresh read: every applied change's after-values are live
(:func:`unconfirmed`), and — when the desired state the plan came from is at hand — a new diff
of the plan's sites finds nothing left to do (:func:`remaining`).
"""

from __future__ import annotations

from casdesired import model
from casdesired.changes.diff import diff
from casdesired.changes.types import (
    ArrayCreate,
    ArrayDelete,
    ArrayUpdate,
    AutodiscoverChange,
    BindingChange,
    Change,
    NlbNodeAdd,
    NlbNodeRemove,
)
from casdesired.desired.config import DesiredState
from casdesired.live.state import LiveState


def _same_target(live: str, wanted: str) -> bool:
    """RpcClientAccessServer as Exchange shows it may be the FQDN of a name we sent."""
    a, b = model.key(live), model.key(wanted)
    return a == b or ("." not in b and a.split(".", 1)[0] == b)


def problem(change: Change, live: LiveState) -> str | None:
    """Why ``change`` is not visible in ``live`` (None when it is)."""
    estate = live.estate
    if isinstance(change, (ArrayCreate, ArrayUpdate)):
        array = estate.arrays.get(model.key(change.fqdn))
        if array is None:
            return f"CAS array {change.fqdn} is not there"
        if array.name != change.name:
            return f"CAS array {change.fqdn} is named {array.name}, not {change.name}"
        return None
    if isinstance(change, ArrayDelete):
        return f"CAS array {change.fqdn} still exists" if model.key(change.fqdn) in estate.arrays \
            else None
    if isinstance(change, BindingChange):
        db = estate.databases.get(model.key(change.database))
        if db is None:
            return f"database {change.database} is not there"
        if not _same_target(db.rpc_client_access_server, change.target):
            return (f"database {change.database} points to {db.rpc_client_access_server}, "
                    f"not {change.target}")
        return None
    if isinstance(change, (NlbNodeAdd, NlbNodeRemove)):
        cluster = live.nlb.get(model.key(change.cluster_host))
        present = cluster is not None and cluster.node(change.server) is not None
        if isinstance(change, NlbNodeAdd) and not present:
            return f"{change.server} is not in the NLB cluster on {change.cluster_host}"
        if isinstance(change, NlbNodeRemove) and present:
            return f"{change.server} is still in the NLB cluster on {change.cluster_host}"
        return None
    if isinstance(change, AutodiscoverChange):
        server = estate.servers.get(model.key(change.server))
        if server is None:
            return f"server {change.server} is not there"
        if change.internal_uri is not None and (
            (server.autodiscover_internal_uri or "").lower() != change.internal_uri.lower()
        ):
            return f"the Autodiscover URI of {change.server} is {server.autodiscover_internal_uri}"
        if change.site_scope is not None and sorted(
            model.key(s) for s in server.autodiscover_site_scope or ()
        ) != sorted(model.key(s) for s in change.site_scope):
            return f"the Autodiscover site scope of {change.server} did not change"
        return None
    return None  # a change another layer executes verifies itself


def unconfirmed(applied: list[Change], live: LiveState) -> list[str]:
    return [f"{c.describe()}: {p}" for c in applied if (p := problem(c, live)) is not None]


def remaining(desired: DesiredState, live: LiveState, sites: tuple[str, ...] | None) -> list[str]:
    """What a new plan of the same sites would still do (empty when converged)."""
    changeset = diff(desired, live, sites=sites)
    return [c.describe() for c in changeset.changes]

"""What a plan depends on in the live organisation: one short fingerprint per object in scope.

A saved plan records these (``depends_on``) so apply can tell, object by object, what moved
since the plan was made: an object changed, created (a database that a site's pattern would
now bind, a server that joined a site) or gone. Mailbox counts and the server hosting a
database's active copy are left out: they drift all day (mailbox moves, DAG failovers) and no
change of the plan depends on them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from casdesired import model
from casdesired.changes.diff import LiveView

LABELS = {
    "server": "CAS server",
    "array": "CAS array",
    "database": "mailbox database",
    "nlb-cluster": "NLB cluster",
    "nlb-node": "NLB node",
}


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def live_objects(live: LiveView, sites: Iterable[str] | None = None) -> dict[str, str]:
    """``{"<kind>:<identity>": fingerprint}`` for the objects a plan of ``sites`` depends on.

    Servers and arrays of the sites in scope, every database (a site's pattern may match any
    database, so one created anywhere matters), and every NLB cluster read with its nodes.
    """
    scope = {model.key(s) for s in sites} if sites is not None else None
    estate = live.estate

    def in_scope(site: str) -> bool:
        return scope is None or model.key(site) in scope

    objects: dict[str, str] = {}
    for server in estate.servers.values():
        if in_scope(server.site):
            objects[f"server:{server.name}"] = _short(
                [
                    server.fqdn,
                    model.key(server.site),
                    server.autodiscover_internal_uri,
                    list(server.autodiscover_site_scope or ()),
                    server.version,
                ]
            )
    for array in estate.arrays.values():
        if in_scope(array.site):
            objects[f"array:{array.fqdn}"] = _short([array.name, model.key(array.site)])
    for db in estate.databases.values():
        objects[f"database:{db.database}"] = _short(model.key(db.rpc_client_access_server))
    for lb in live.nlb.values():
        host = lb.cluster_host or ""
        objects[f"nlb-cluster:{host}"] = _short([lb.vip, lb.interface])
        for node in lb.nodes:
            objects[f"nlb-node:{host}/{node.server}"] = _short([node.interface, node.state])
    return objects


@dataclass(frozen=True)
class Moved:
    """What differs between the objects a plan recorded and those read now."""

    changed: tuple[str, ...] = ()
    created: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changed or self.created or self.gone)

    def describe(self, limit: int = 10) -> str:
        """``changed since the plan: mailbox database HQ-DB05; created since ...``."""
        parts = []
        for what, items in (
            ("changed", self.changed),
            ("created", self.created),
            ("gone", self.gone),
        ):
            if items:
                shown = [_label(item) for item in items[:limit]]
                more = f" and {len(items) - limit} more" if len(items) > limit else ""
                parts.append(f"{what} since the plan: " + ", ".join(shown) + more)
        return "; ".join(parts)


def _label(entry: str) -> str:
    kind, _, identity = entry.partition(":")
    return f"{LABELS.get(kind, kind)} {identity}"


def compare_objects(recorded: Mapping[str, str], now: Mapping[str, str]) -> Moved:
    """Compare by case-insensitive identity (Exchange's identities are)."""
    old = {entry.lower(): (entry, fp) for entry, fp in recorded.items()}
    new = {entry.lower(): (entry, fp) for entry, fp in now.items()}
    return Moved(
        changed=tuple(sorted(new[k][0] for k in new.keys() & old.keys() if new[k][1] != old[k][1])),
        created=tuple(sorted(new[k][0] for k in new.keys() - old.keys())),
        gone=tuple(sorted(old[k][0] for k in old.keys() - new.keys())),
    )

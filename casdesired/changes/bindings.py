"""Database bindings: which array (or server) each database's RpcClientAccessServer names.

Targets compare by canonical identity (an array by any of its names, a server by name or FQDN),
so only real moves become :class:`~casdesired.changes.types.BindingChange`. Databases no site
binds are listed as unmanaged. An array whose FQDN changes counts the users of the databases
that stay on it, not of those rebound away in the same plan (:func:`settle_array_updates`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from casdesired import model
from casdesired.changes.compare import compare
from casdesired.changes.context import DiffContext
from casdesired.changes.types import ArrayUpdate, BindingChange
from casdesired.changes.unmanaged import Unmanaged
from casdesired.findings import Finding, Source


def diff_bindings(d: DiffContext) -> None:
    site_of_file = {s.source.path: s.name for s in d.all_sites if s.source is not None}
    for diagnostic in d.inp.binding_diagnostics:
        site = site_of_file.get(diagnostic.location.path)
        if site is None or model.key(site) in d.scope or not d.inp.scoped:
            d.findings.append(
                Finding(
                    diagnostic.severity,
                    diagnostic.rule or "binding",
                    diagnostic.message,
                    site,
                    diagnostic.location,
                    source=Source.DESIRED,
                )
            )
    desired: dict[str, dict[str, Any]] = {}
    targets: dict[str, tuple[str, str]] = {}
    for k, binding in d.inp.bindings.items():
        canonical = d.canonical(binding.rpc_client_access_server)
        site = d.canonical_site.get(canonical)
        if site is None or model.key(site) not in d.scope:
            continue
        if k not in d.live.databases:
            continue  # resolve_bindings already reported it
        desired[k] = {"target": canonical}
        targets[k] = (site, binding.rpc_client_access_server)
    live = {
        k: {"target": d.canonical(d.live.databases[k].rpc_client_access_server)}
        for k in desired
    }
    for k in compare(desired, live).changed:
        db = d.live.databases[k]
        site, target = targets[k]
        d.changes.append(
            BindingChange(
                site=site,
                database=db.database,
                before_target=db.rpc_client_access_server,
                target=d.target_value(target),
                mailbox_count=db.mailbox_count or 0,
            )
        )


def settle_array_updates(d: DiffContext) -> None:
    """An array's FQDN change affects the databases that stay on it, not those rebound away
    in the same plan (their users are counted once, under their rebinding)."""
    rebound = {model.key(c.database) for c in d.changes if isinstance(c, BindingChange)}
    for i, change in enumerate(d.changes):
        if not isinstance(change, ArrayUpdate):
            continue
        staying = [
            d.live.databases[model.key(name)]
            for name in change.bound_databases
            if model.key(name) not in rebound
        ]
        d.changes[i] = replace(
            change,
            bound_databases=tuple(db.database for db in staying),
            bound_mailboxes=sum(db.mailbox_count or 0 for db in staying),
        )


def unmanaged_databases(d: DiffContext) -> None:
    for k, db in d.live.databases.items():
        if k in d.inp.bindings:
            continue
        site = d.canonical_site.get(d.canonical(db.rpc_client_access_server))
        if d.inp.scoped and (site is None or model.key(site) not in d.scope):
            continue
        d.unmanaged.append(
            Unmanaged(
                "database",
                db.database,
                site,
                f"not bound by any site; RpcClientAccessServer {db.rpc_client_access_server}",
            )
        )

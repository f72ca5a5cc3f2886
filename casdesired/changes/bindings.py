"""Database bindings: which array (or server) each database's RpcClientAccessServer names.

Targets compare by canonical identity (an array by any of its names, a server by name or FQDN),
so only real moves become :class:`~casdesired.changes.types.BindingChange`. Databases no site
binds are listed as unmanaged. An array whose FQDN changes counts the users of the databases
that stay on it, not of those rebound away in the same plan (:func:`settle_array_updates`).

Two field facts (shared/domain/exchange2010-field.md §7, §9): RpcClientAccessServer is
functional only in Exchange 2010, so binding a database hosted on a 2013+ server is an error
about that database alone; and a database whose array was removed under it shows a blank
RpcClientAccessServer — an orphaned pointer, which the plan names as such.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from casdesired import model
from casdesired.changes.compare import compare
from casdesired.changes.context import DiffContext
from casdesired.changes.types import ArrayUpdate, BindingChange
from casdesired.changes.unmanaged import Unmanaged
from casdesired.findings import Finding, Scope, Severity


def diff_bindings(d: DiffContext) -> None:
    site_of_file = {s.source.path: s.name for s in d.all_sites if s.source is not None}
    for found in d.inp.binding_findings:
        # Found where the YAML was resolved against the live databases: it concerns the site
        # whose file it is in.
        site = site_of_file.get(found.where.path)
        if site is None or model.key(site) in d.scope or not d.inp.scoped:
            d.findings.append(replace(found, site=site, rule=found.rule or "binding"))
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
        _on_newer_exchange(d, db, site, d.inp.bindings[k])
        d.changes.append(
            BindingChange(
                site=site,
                database=db.database,
                before_target=db.rpc_client_access_server,
                target=d.target_value(target),
                mailbox_count=db.mailbox_count or 0,
            )
        )


def _on_newer_exchange(
    d: DiffContext, db: model.DatabaseBinding, site: str, binding: model.DatabaseBinding
) -> None:
    """A rebinding of a database hosted on an Exchange 2013+ server is withheld, alone."""
    host = d.live.servers.get(model.key(db.server or "").split(".", 1)[0])
    major = model.exchange_major(host.version) if host is not None else None
    if host is None or major is None or major < 15:
        return
    d.findings.append(
        Finding(
            Severity.ERROR,
            "database-on-exchange-2013",
            f"database {db.database} is hosted on {host.name}, which runs Exchange 2013 or "
            f"later ({host.version}): RpcClientAccessServer is functional only in Exchange "
            "2010 (and a 2010 server cannot write a newer database), so it cannot be bound; "
            "leave it out of the site's names, or narrow the pattern that matches it. Its "
            "rebinding is withheld; the rest of the site goes ahead",
            site,
            binding.source,
            name=db.database,
            scope=Scope.OBJECT,
        )
    )


def orphaned_pointers(d: DiffContext) -> None:
    """Databases whose RpcClientAccessServer is blank: the array they pointed at was removed."""
    for k, db in d.live.databases.items():
        if db.rpc_client_access_server.strip():
            continue
        binding = d.inp.bindings.get(k)
        site = d.canonical_site.get(d.canonical(binding.rpc_client_access_server)) if (
            binding is not None
        ) else None
        if d.inp.scoped and (site is None or model.key(site) not in d.scope):
            continue
        rebound = binding is not None and site is not None
        fix = (
            f"this plan binds it to {d.target_value(binding.rpc_client_access_server)}"
            if binding is not None and site is not None
            else "bind it to its site's array in the YAML"
        )
        # Mailboxes are counted for the databases a plan rebinds, after the diff: a rebound
        # one's count is its rebinding's; an unmanaged one's is not counted at all.
        mailboxes = (
            "its mailboxes (counted under its rebinding)" if rebound
            else f"its {db.mailbox_count:,} mailboxes" if db.mailbox_count is not None
            else "its mailboxes"
        )
        d.findings.append(
            Finding(
                Severity.WARNING,
                "database-orphaned-pointer",
                f"database {db.database} has a blank RpcClientAccessServer: the CAS array it "
                "pointed at was removed while the database still used it (an orphaned "
                f"pointer); Outlook profiles created for {mailboxes} get no usable RPC "
                f"endpoint until it is bound again — {fix}",
                site,
                binding.source if binding is not None else None,
                name=db.database,  # the database it is about (casdesired drift reports it)
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
        shown = db.rpc_client_access_server or "(blank: orphaned pointer)"
        d.unmanaged.append(
            Unmanaged(
                "database",
                db.database,
                site,
                f"not bound by any site; RpcClientAccessServer {shown}",
            )
        )

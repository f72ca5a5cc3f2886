"""CAS arrays: one per site, matched by site, so a new FQDN is an update, never a re-create.

Also the check that runs after withholding: an array delete while databases would still point
to it blocks its site (:func:`array_deletes_in_use`).
"""

from __future__ import annotations

from collections.abc import Sequence

from casdesired import model
from casdesired.changes.changeset import blocked_sites
from casdesired.changes.compare import compare
from casdesired.changes.context import DiffContext
from casdesired.changes.types import ArrayCreate, ArrayDelete, ArrayUpdate, BindingChange, Change
from casdesired.changes.unmanaged import Unmanaged
from casdesired.findings import Severity


def diff_array(d: DiffContext, site: model.Site) -> None:
    wanted = site.array
    live_in_site = d.live.array_in_site(site.name)
    if wanted is None:
        if live_in_site is not None:
            if d.prunes(site):
                d.changes.append(
                    ArrayDelete(site=site.name, fqdn=live_in_site.fqdn, name=live_in_site.name)
                )
            else:
                d.unmanaged.append(
                    Unmanaged("array", live_in_site.fqdn, site.name, "array not declared")
                )
        return
    by_fqdn = d.live.arrays.get(wanted.key)
    if by_fqdn is not None and model.key(by_fqdn.site) != site.key:
        d.finding(
            Severity.ERROR,
            "array-in-other-site",
            f"CAS array {wanted.fqdn} is declared in site {site.name} but exists in site "
            f"{by_fqdn.site}; move its declaration or remove the live array first",
            site.name,
            wanted.source,
        )
        return
    if wanted.ensure is model.Ensure.ABSENT:
        if by_fqdn is not None:
            d.changes.append(
                ArrayDelete(site=site.name, fqdn=by_fqdn.fqdn, name=by_fqdn.name)
            )
        elif live_in_site is not None:
            d.finding(
                Severity.WARNING,
                "array-absent-other-fqdn",
                f"site {site.name} declares array {wanted.fqdn} absent, but the site's live "
                f"array is {live_in_site.fqdn}: nothing is deleted. To remove it, declare "
                f"fqdn {live_in_site.fqdn} with ensure: absent",
                site.name,
                wanted.source,
            )
        return
    current = by_fqdn or live_in_site
    if current is None:
        d.changes.append(ArrayCreate(site=site.name, fqdn=wanted.fqdn, name=wanted.name))
        return
    fields_ = compare(
        {"a": {"fqdn": model.key(wanted.fqdn), "name": wanted.name}},
        {"a": {"fqdn": model.key(current.fqdn), "name": current.name}},
    ).changed.get("a", frozenset())
    if not fields_:
        return
    bound = [
        db
        for db in d.live.databases.values()
        if d.canonical(db.rpc_client_access_server) == f"array:{site.key}"
    ]
    d.changes.append(
        ArrayUpdate(
            site=site.name,
            live_fqdn=current.fqdn,
            before_name=current.name,
            fqdn=wanted.fqdn if "fqdn" in fields_ else current.fqdn,
            name=wanted.name if "name" in fields_ else current.name,
            bound_databases=tuple(db.database for db in bound),
            bound_mailboxes=sum(db.mailbox_count or 0 for db in bound),
        )
    )


def array_deletes_in_use(d: DiffContext, going: Sequence[Change]) -> bool:
    """Block the site of an array delete that databases would still point to afterwards.

    ``going`` are the changes not withheld: a rebinding withheld with its site (or left out
    of a ``--site`` run) does not move its database away. True when a finding was added.
    """
    rebound = {model.key(c.database): c.target for c in going if isinstance(c, BindingChange)}
    added = False
    for change in going:
        if not isinstance(change, ArrayDelete):
            continue
        gone = d.canonical(change.fqdn)
        still = [
            db.database
            for k, db in d.live.databases.items()
            if d.canonical(rebound.get(k, db.rpc_client_access_server)) == gone
        ]
        if not still:
            continue
        more = f" and {len(still) - 5} more" if len(still) > 5 else ""
        shown = ", ".join(still[:5]) + more
        d.finding(
            Severity.ERROR,
            "array-delete-in-use",
            f"CAS array {change.fqdn} would be deleted while {len(still)} database(s) "
            f"still use it ({shown}); {_why_still_bound(d, still)}",
            change.site,
        )
        added = True
    return added


def _why_still_bound(d: DiffContext, databases: list[str]) -> str:
    """What keeps the databases on a deleted array: the advice the finding ends with."""
    blocked = blocked_sites(d.findings)
    elsewhere: dict[str, str] = {}  # site key -> site name that rebinds some of them
    for name in databases:
        binding = d.inp.bindings.get(model.key(name))
        if binding is None:
            continue
        site = d.canonical_site.get(d.canonical(binding.rpc_client_access_server))
        if site is not None:
            elsewhere.setdefault(model.key(site), site)
    out_of_run = [n for k, n in elsewhere.items() if k not in d.scope]
    held = [n for k, n in elsewhere.items() if k in d.scope and k in blocked]
    if out_of_run:
        sites = ", ".join(out_of_run)
        flags = " ".join(f"--site {n}" for n in out_of_run)
        return (
            f"site(s) {sites} rebind them, but this run leaves them out: run with {flags} "
            "as well, so the rebindings go first"
        )
    if held:
        return (
            f"site(s) {', '.join(held)} rebind them, but their changes are withheld by "
            "blocking findings; fix those first"
        )
    return "bind them elsewhere in the YAML first"

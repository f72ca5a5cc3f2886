"""Desired versus live: the typed changes that would make the organisation match, and findings.

Rules (issue 4 §4–§5):

* Only declared objects are managed. Live objects the YAML does not mention are listed as
  unmanaged and never touched, unless the site prunes (``site.prune`` AND
  ``policy.allow_prune``): then the site's undeclared array and NLB nodes become deletes.
* Arrays are matched per site (one array per AD site): a declared FQDN that differs from the
  site's live array is an FQDN *update*, never a delete-and-recreate.
* A CAS declared in one site but living in another, a declared server missing live, and any
  Exchange 2013+ server are blocking findings: the site's changes are withheld.
* NLB: declared members missing live are added; a node that is a declared server of the site
  but not in ``members`` is drained and removed (other undeclared nodes only with prune); the
  plan never leaves a cluster without a node that is converged now and stays.
* An array delete while databases would still point to it is a blocking finding — checked
  after withholding, so a rebinding withheld with its site does not count as moving away.

:func:`diff` is the entry point (DesiredState + LiveState); :func:`diff_input` does the work on
plain model objects so it can be tested, and benchmarked, on hand-built estates. Each object kind
reports its own changes (:mod:`.servers`, :mod:`.arrays`, :mod:`.nlb`, :mod:`.bindings`, sharing
the identities of :mod:`.context`); extra sources (DNS) add theirs; withholding and the order the
changes run in are decided once, here and in :mod:`.changeset`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from casdesired import model
from casdesired.changes.arrays import array_deletes_in_use, diff_array
from casdesired.changes.bindings import (
    diff_bindings,
    orphaned_pointers,
    settle_array_updates,
    unmanaged_databases,
)
from casdesired.changes.changeset import ChangeSet, ExtraSource, going_ahead, order_changes
from casdesired.changes.context import DiffContext, DiffInput, LiveView
from casdesired.changes.nlb import diff_nlb
from casdesired.changes.servers import diff_servers
from casdesired.changes.types import Change
from casdesired.errors import ConfigError
from casdesired.findings import Severity

if TYPE_CHECKING:
    from casdesired.desired.config import DesiredState

__all__ = ["DiffInput", "LiveView", "diff", "diff_input"]


def diff(
    desired: DesiredState,
    live: LiveView,
    *,
    sites: Iterable[str] | None = None,
    sources: Sequence[ExtraSource] = (),
) -> ChangeSet:
    """Compare the desired state with the live organisation (optionally only some sites).

    ``sources`` add their changes and findings (DNS records and checks) to the Exchange ones
    before anything is withheld, so withholding and every later safety check see one list.
    """
    from casdesired.desired.bindings import resolve_bindings

    declared = {s.key: s for s in desired.sites}
    scope: list[model.Site] = list(desired.sites)
    scope_names: tuple[str, ...] | None = None
    if sites is not None:
        scope_names = tuple(sites)
        unknown = [n for n in scope_names if model.key(n) not in declared]
        if unknown:
            known = ", ".join(s.name for s in desired.sites) or "none"
            raise ConfigError(f"unknown site {unknown[0]!r} (declared sites: {known})")
        wanted = {model.key(n) for n in scope_names}
        scope = [s for s in desired.sites if s.key in wanted]
    live_names = [db.database for db in live.estate.databases.values()]
    bindings, diagnostics = resolve_bindings(desired, live_names)
    return diff_input(
        DiffInput(
            sites=scope,
            bindings=bindings,
            live=live.estate,
            nlb=live.nlb,
            binding_findings=diagnostics,
            allow_prune=desired.organisation.policy.allow_prune,
            all_sites=desired.sites,
            scoped=sites is not None,
            exchange_roles=live.exchange_roles,
            sources=sources,
        ),
        sites=tuple(s.name for s in scope) if scope_names is not None else None,
    )


def diff_input(inp: DiffInput, *, sites: tuple[str, ...] | None = None) -> ChangeSet:
    """The diff on plain model objects (what :func:`diff` calls)."""
    d = DiffContext(inp)
    for site in inp.sites:
        diff_servers(d, site)
        diff_array(d, site)
        diff_nlb(d, site)
        if site.prune and not inp.allow_prune:
            d.finding(
                Severity.WARNING,
                "prune-not-allowed",
                f"site {site.name} asks to prune, but the organisation's policy has "
                "allow_prune: false; nothing is deleted",
                site.name,
                site.source,
            )
    diff_bindings(d)
    orphaned_pointers(d)
    settle_array_updates(d)
    unmanaged_databases(d)
    proposed = tuple(d.changes)
    for source in inp.sources:
        found = source(proposed)
        d.changes.extend(found.changes)
        d.findings.extend(found.findings)
    going, withheld = _withhold(d)
    return ChangeSet(
        changes=tuple(going),
        findings=tuple(d.findings),
        withheld=tuple(withheld),
        unmanaged=tuple(d.unmanaged),
        sites=sites,
    )


def _withhold(d: DiffContext) -> tuple[list[Change], list[Change]]:
    """The changes that go ahead and those withheld, each in the order they run.

    Withholding a site's rebindings can leave another site's array delete in use; blocking
    that site withholds more, so re-check array deletes until nothing new is blocked (each
    round blocks at least one more site).
    """
    while True:
        going = going_ahead(d.changes, d.findings)
        if not array_deletes_in_use(d, going):
            break
    kept = {id(c) for c in going}
    ordered = order_changes(d.changes)
    return [c for c in ordered if id(c) in kept], [c for c in ordered if id(c) not in kept]

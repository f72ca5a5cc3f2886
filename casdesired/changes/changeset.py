"""The change set: every source's changes and findings, ordered, with blocked sites withheld.

The diff (:mod:`casdesired.changes.diff`) proposes the Exchange changes; extra sources (DNS:
:class:`casdesired.dns.source.DnsSource`) add theirs to the same list before anything is
withheld, as octoDNS's ``_extra_changes`` join a zone's changes before its plan exists. Then
withholding runs once over the whole list, and the order the changes must run in is fixed here
(:func:`order_changes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from casdesired import model
from casdesired.changes.types import ArrayUpdate, BindingChange, Change
from casdesired.changes.unmanaged import Unmanaged
from casdesired.findings import Finding


@dataclass(frozen=True)
class Found:
    """What an extra source adds: changes, and findings about them or their objects."""

    changes: tuple[Change, ...] = ()
    findings: tuple[Finding, ...] = ()


class ExtraSource(Protocol):
    """A source of changes beside the Exchange diff (DNS records, ...).

    Called once with every change the diff proposes — withheld ones included, since a source
    may plan for them too (a renamed array's old DNS name) — before withholding; returns its own
    changes (each naming its site, so a blocked site withholds them too) and findings.
    """

    def __call__(self, proposed: Sequence[Change]) -> Found: ...


@dataclass(frozen=True)
class ChangeSet:
    """The result of a diff: ordered changes, findings, withheld changes, unmanaged objects."""

    changes: tuple[Change, ...] = ()
    """Ordered as they must run (see :func:`order_changes`)."""
    findings: tuple[Finding, ...] = ()
    """From the diff and every extra source (DNS findings among them)."""
    withheld: tuple[Change, ...] = ()
    """Changes of sites a blocking finding names; shown, never applied."""
    unmanaged: tuple[Unmanaged, ...] = ()
    sites: tuple[str, ...] | None = None
    """The sites the diff was limited to (None: every declared site)."""

    def databases_moved(self) -> list[str]:
        """The databases whose users a change moves (withheld ones too, so a reviewer sees
        what they would affect): rebound databases, and those staying on an array whose FQDN
        changes. Their mailboxes are what the plan counts."""
        names: dict[str, str] = {}
        for change in (*self.changes, *self.withheld):
            if isinstance(change, BindingChange):
                names.setdefault(model.key(change.database), change.database)
            elif isinstance(change, ArrayUpdate) and change.fqdn_changes:
                for name in change.bound_databases:
                    names.setdefault(model.key(name), name)
        return list(names.values())

    def with_mailbox_counts(self, counts: Mapping[str, int]) -> ChangeSet:
        """This change set with each rebinding's and each FQDN change's mailboxes counted
        (``counts`` by database key, from :mod:`casdesired.live.mailboxes`)."""

        def counted(change: Change) -> Change:
            if isinstance(change, BindingChange):
                return replace(
                    change, mailbox_count=counts.get(model.key(change.database), 0)
                )
            if isinstance(change, ArrayUpdate):
                total = sum(counts.get(model.key(n), 0) for n in change.bound_databases)
                return replace(change, bound_mailboxes=total)
            return change

        return replace(
            self,
            changes=tuple(counted(c) for c in self.changes),
            withheld=tuple(counted(c) for c in self.withheld),
        )


def blocked_sites(findings: Iterable[Finding]) -> set[str]:
    """Keys of the sites whose changes blocking findings withhold."""
    return {model.key(f.site) for f in findings if f.blocking and not f.object_scoped and f.site}


def blocked_objects(findings: Iterable[Finding]) -> set[str]:
    """Keys of the objects whose changes object-scoped blocking findings withhold."""
    return {model.key(f.name) for f in findings if f.blocking and f.object_scoped and f.name}


def blocks_everything(findings: Iterable[Finding]) -> bool:
    """A blocking finding that names no site (and no object) withholds every change."""
    return any(f.blocking and not f.object_scoped and f.site is None for f in findings)


def withheld_by(change: Change, findings: Sequence[Finding]) -> bool:
    """Whether a blocking finding withholds ``change``: its site's, or one about its object."""
    if blocks_everything(findings):
        return True
    if model.key(change.site) in blocked_sites(findings):
        return True
    return bool(change.subjects & blocked_objects(findings))


def going_ahead(changes: Iterable[Change], findings: Sequence[Finding]) -> list[Change]:
    """The changes no blocking finding withholds."""
    if blocks_everything(findings):
        return []
    sites, objects = blocked_sites(findings), blocked_objects(findings)
    return [
        c for c in changes if model.key(c.site) not in sites and not (c.subjects & objects)
    ]


def order_changes(changes: Iterable[Change]) -> list[Change]:
    """Array creates → NLB adds → DNS record creates/updates and Autodiscover → array updates →
    bindings → NLB removes → array deletes → DNS record deletes (``Change.order``).

    Arrays exist before bindings use them; a name resolves before an array takes it (its
    databases follow a renamed array at once); nodes join before others leave; arrays and their
    names go only after nothing points to them. Within a group, by site then identity, so plans
    are deterministic.
    """
    return sorted(changes, key=lambda c: (c.order, model.key(c.site), model.key(c.identity)))


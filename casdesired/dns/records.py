"""Typed changes to an array's A record, planned by comparing the desired VIP with the primary.

A :class:`RecordChange` is plain data with its before and after, so a plan can show it, apply
can carry it out with prerequisites that pin ``before``, and rollback is its :meth:`inverse`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from casdesired import model
from casdesired.dns.check import ArrayExpectation
from casdesired.dns.errors import DnsError, DnsLookupError
from casdesired.dns.lookup import FAILURES, lookup_a, sorted_addresses, to_dns_name
from casdesired.dns.tsig import TsigConfig

Action = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class RecordChange:
    """One change to one name's A RRset in one zone."""

    action: Action
    name: str
    zone: str
    before: tuple[str, ...]
    """The addresses the primary held at plan time; apply proceeds only if they still hold."""
    after: tuple[str, ...]
    ttl: int

    def inverse(self) -> RecordChange:
        """The change that undoes this one (for the rollback plan)."""
        action: Action = self.action
        if self.action == "create":
            action = "delete"
        elif self.action == "delete":
            action = "create"
        return RecordChange(action, self.name, self.zone, self.after, self.before, self.ttl)

    def describe(self) -> str:
        """One line for a plan: what happens to which name."""
        before, after = ", ".join(self.before), ", ".join(self.after)
        if self.action == "create":
            return f"create A {self.name} -> {after} (TTL {self.ttl})"
        if self.action == "delete":
            return f"delete A {self.name} (was {before})"
        return f"update A {self.name}: {before} -> {after} (TTL {self.ttl})"

    def to_dict(self) -> dict[str, object]:
        return {
            "action": self.action,
            "type": "A",
            "name": self.name,
            "zone": self.zone,
            "before": list(self.before),
            "after": list(self.after),
            "ttl": self.ttl,
        }


def primary_lookup(tsig: TsigConfig, *, timeout: float = 5.0) -> Callable[[str], set[str]]:
    """A ``live`` function for :func:`plan_records`: the A addresses the zone's primary holds.

    Asks the primary itself (no recursion, no caches), because the update's prerequisites are
    judged there. A name with no A record gives an empty set; a failure raises DnsLookupError.
    """
    endpoint = tsig.endpoint

    def live(name: str) -> set[str]:
        lookup = lookup_a(name, endpoint, timeout=timeout, recursion=False)
        if lookup.status in FAILURES:
            raise DnsLookupError(f"cannot read the current A record: {lookup.describe()}")
        return set(lookup.addresses)

    return live


def plan_records(
    arrays: Iterable[ArrayExpectation],
    *,
    tsig: TsigConfig,
    live: Callable[[str], set[str]],
) -> list[RecordChange]:
    """The record changes that make each array's A record equal its VIP (or gone, if absent).

    ``live(fqdn)`` returns the addresses held now (empty set: no record). Raises DnsError for an
    array whose FQDN lies outside the managed zone. Changes come sorted by name.
    """
    zone = tsig.zone_name
    zone_text = zone.to_text(omit_final_dot=True)
    changes: list[RecordChange] = []
    seen: set[str] = set()
    for expected in arrays:
        qname = to_dns_name(expected.fqdn)
        name = qname.to_text(omit_final_dot=True).lower()
        if name in seen:
            continue
        seen.add(name)
        if not qname.is_subdomain(zone):
            raise DnsError(
                f"array {expected.fqdn} is not in the managed DNS zone {zone_text}; "
                "casdesired can only manage records inside that zone"
            )
        current = tuple(sorted_addresses(live(name)))
        if expected.ensure is model.Ensure.ABSENT:
            if current:
                changes.append(RecordChange("delete", name, zone_text, current, (), tsig.ttl))
            continue
        if current == (expected.vip,):
            continue
        action: Action = "update" if current else "create"
        changes.append(RecordChange(action, name, zone_text, current, (expected.vip,), tsig.ttl))
    return sorted(changes, key=lambda c: c.name)

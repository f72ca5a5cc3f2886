"""Changes to an array's A record: planned here, carried by the plan, applied by :mod:`.update`.

One class is the change, as octoDNS's ``record/change.py`` Create/Update/Delete are:
:class:`RecordChange` (with :class:`RecordCreate`, :class:`RecordUpdate`,
:class:`RecordDelete`) is a plan :class:`~casdesired.changes.types.Change` like the Exchange
ones. It carries its before and after (apply proceeds only if ``before`` still holds), the
management it was planned with (server, zone, key NAME, the NAME of the secret's variable —
never the secret), so a saved plan updates exactly the server that was reviewed, and its own
:meth:`~RecordChange.inverse` for the rollback plan. The agent never runs it: casdesired sends
the RFC 2136 update itself (:func:`casdesired.dns.update.apply_record_change`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from casdesired import model
from casdesired.agent.protocol import Invocation, JsonValue
from casdesired.changes.types import Action, BadChange, Change
from casdesired.dns.check import ArrayExpectation
from casdesired.dns.errors import DnsError, DnsLookupError
from casdesired.dns.lookup import FAILURES, lookup_a, sorted_addresses, to_dns_name
from casdesired.dns.tsig import TsigConfig

# The management fields a saved plan carries for each record change (flat, as format 1 has it).
_MANAGEMENT_FIELDS = ("server", "key_name", "algorithm", "secret_env", "unsigned")


@dataclass(frozen=True)
class RecordChange(Change):
    """One change to one name's A RRset in one zone, sent as an RFC 2136 update."""

    order: ClassVar[int] = 2
    """After arrays are created and NLB nodes joined; before an FQDN-changing array update
    (its databases follow the array onto the new name at once) and the bindings that need it."""
    needs_exchange: ClassVar[bool] = False

    name: str
    zone: str
    before_addresses: tuple[str, ...]
    """The addresses the primary held at plan time; apply proceeds only if they still hold."""
    after_addresses: tuple[str, ...]
    ttl: int
    management: TsigConfig

    @property
    def identity(self) -> str:
        return self.name

    def before(self) -> dict[str, JsonValue] | None:
        return {"A": list(self.before_addresses)} if self.before_addresses else None

    def after(self) -> dict[str, JsonValue] | None:
        return {"A": list(self.after_addresses), "ttl": self.ttl} if self.after_addresses else None

    def describe(self) -> str:
        before, after = ", ".join(self.before_addresses), ", ".join(self.after_addresses)
        where = f"(zone {self.zone} at DNS server {self.management.server})"
        if self.action is Action.CREATE:
            return f"create DNS A record {self.name} -> {after}, TTL {self.ttl} {where}"
        if self.action is Action.DELETE:
            return f"delete DNS A record {self.name} (was {before}) {where}"
        return f"update DNS A record {self.name}: {before} -> {after}, TTL {self.ttl} {where}"

    def invocations(self) -> list[Invocation]:
        return []  # not the agent's: casdesired sends the update itself

    def inverse(self) -> RecordChange:
        """The change that undoes this one (for the rollback plan), pinned to what it left."""
        undo = {Action.CREATE: RecordDelete, Action.DELETE: RecordCreate}.get(
            self.action, RecordUpdate
        )
        return undo(
            site=self.site,
            name=self.name,
            zone=self.zone,
            before_addresses=self.after_addresses,
            after_addresses=self.before_addresses,
            ttl=self.ttl,
            management=self.management,
        )

    def to_json(self) -> dict[str, JsonValue]:
        management = self.management
        return {
            "kind": self.kind,
            "site": self.site,
            "name": self.name,
            "zone": self.zone,
            "before_addresses": list(self.before_addresses),
            "after_addresses": list(self.after_addresses),
            "ttl": self.ttl,
            **{f: getattr(management, f) for f in _MANAGEMENT_FIELDS},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RecordChange:
        def text(name: str) -> str:
            value = data.get(name)
            if not isinstance(value, str):
                raise BadChange(f"change {cls.kind}: {name!r} must be a string")
            return value

        def addresses(name: str) -> tuple[str, ...]:
            value = data.get(name)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise BadChange(f"change {cls.kind}: {name!r} must be a list of strings")
            return tuple(value)

        ttl, unsigned = data.get("ttl"), data.get("unsigned", False)
        if not isinstance(ttl, int) or isinstance(ttl, bool):
            raise BadChange(f"change {cls.kind}: 'ttl' must be a whole number")
        if not isinstance(unsigned, bool):
            raise BadChange(f"change {cls.kind}: 'unsigned' must be true or false")
        zone = text("zone")
        return cls(
            site=text("site"),
            name=text("name"),
            zone=zone,
            before_addresses=addresses("before_addresses"),
            after_addresses=addresses("after_addresses"),
            ttl=ttl,
            management=TsigConfig(
                key_name=text("key_name"),
                algorithm=text("algorithm"),
                secret_env=text("secret_env"),
                server=text("server"),
                zone=zone,
                ttl=ttl,
                unsigned=unsigned,
            ),
        )


@dataclass(frozen=True)
class RecordCreate(RecordChange):
    kind: ClassVar[str] = "dns_record_create"
    action: ClassVar[Action] = Action.CREATE


@dataclass(frozen=True)
class RecordUpdate(RecordChange):
    kind: ClassVar[str] = "dns_record_update"
    action: ClassVar[Action] = Action.UPDATE


@dataclass(frozen=True)
class RecordDelete(RecordChange):
    kind: ClassVar[str] = "dns_record_delete"
    action: ClassVar[Action] = Action.DELETE
    order: ClassVar[int] = 7
    """After the databases moved away and the array is gone (or renamed away from the name)."""


RECORD_CHANGES: tuple[type[RecordChange], ...] = (RecordCreate, RecordUpdate, RecordDelete)
_BY_ACTION: dict[str, type[RecordChange]] = {c.action.value: c for c in RECORD_CHANGES}


def record_change(
    action: str,
    name: str,
    zone: str,
    before: Iterable[str],
    after: Iterable[str],
    ttl: int,
    *,
    management: TsigConfig,
    site: str = "",
) -> RecordChange:
    """The record change of ``action`` (``create``, ``update`` or ``delete``)."""
    return _BY_ACTION[action](
        site=site,
        name=name,
        zone=zone,
        before_addresses=tuple(before),
        after_addresses=tuple(after),
        ttl=ttl,
        management=management,
    )


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
    array whose FQDN lies outside the managed zone. Changes come sorted by name, each carrying
    its array's site.
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
                changes.append(
                    record_change(
                        "delete", name, zone_text, current, (), tsig.ttl,
                        management=tsig, site=expected.site or "",
                    )
                )
            continue
        if current == (expected.vip,):
            continue
        changes.append(
            record_change(
                "update" if current else "create", name, zone_text, current, (expected.vip,),
                tsig.ttl, management=tsig, site=expected.site or "",
            )
        )
    return sorted(changes, key=lambda c: c.name)

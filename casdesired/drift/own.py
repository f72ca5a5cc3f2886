"""casdesired's own applies: which audit entries are casdesired's, never someone else's drift.

An entry is casdesired's own when BOTH hold:

1. its Caller is an account casdesired applies as — the connection's user name, and every
   ``--apply-account`` — compared by account name and domain whatever the form
   (``CONTOSO\\casadmin``, ``casadmin@contoso.local``, ``contoso.local/Users/casadmin``);
2. its RunDate falls in the window of an apply casdesired recorded:

   * on the endpoint (``Get-CasdesiredPlanRecord``): from when the plan registered, before its
     first write, until its lock ended; a lock that has not ended (the apply runs, or was
     killed and its lock later taken over) until the next recorded apply registered — that
     apply held the lock, and a fenced batch stops at its next write once the lock is
     another's — else until now;
   * in this runner's audit log (``--audit-log``): from ``apply-started`` to
     ``apply-finished``, widened by :data:`CLOCK_SKEW` for the runner's clock against the
     server's.

Limits (docs/drift.md): a person who uses casdesired's service account while an apply runs is
taken for casdesired; an account whose canonical name (CN) differs from its logon name needs
``--apply-account`` with the name the log shows; without the endpoint's records and the
runner's log, casdesired's changes are reported as changes by its account outside any apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from casdesired import model
from casdesired.apply import audit as local_log
from casdesired.drift.sources import AuditEntry, PlanRecord, parse_time

CLOCK_SKEW = timedelta(minutes=2)
"""How far the runner's clock (its audit log) may be from the Exchange server's."""


def account_key(text: str) -> tuple[str | None, str]:
    """(domain label or None, account name), case-folded: ``CONTOSO\\casadmin``,
    ``casadmin@contoso.local`` and ``contoso.local/Users/casadmin`` are all
    ``("contoso", "casadmin")``."""
    value = text.strip()
    if "\\" in value:
        domain, _, name = value.partition("\\")
    elif "/" in value:
        domain, name = value.split("/", 1)[0], value.rsplit("/", 1)[-1]
    elif "@" in value:
        name, _, domain = value.rpartition("@")
    else:
        return None, value.casefold()
    label = domain.strip().split(".", 1)[0].casefold()
    return (label or None), name.strip().casefold()


def same_account(a: str, b: str) -> bool:
    """Whether two names are one account (a name without a domain matches any domain)."""
    (domain_a, name_a), (domain_b, name_b) = account_key(a), account_key(b)
    if not name_a or name_a != name_b:
        return False
    return domain_a is None or domain_b is None or domain_a == domain_b


@dataclass(frozen=True)
class OwnApply:
    """One apply casdesired recorded, and the time its writes can fall in."""

    plan_id: str
    start: datetime
    end: datetime
    source: Literal["endpoint", "audit log"]
    owner: str = ""

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end


@dataclass(frozen=True)
class OwnChanges:
    """casdesired's accounts and recorded applies: tells its own entries from others'."""

    accounts: tuple[str, ...]
    applies: tuple[OwnApply, ...]

    def by_account(self, entry: AuditEntry) -> bool:
        return any(same_account(entry.caller, account) for account in self.accounts)

    def apply_of(self, entry: AuditEntry) -> OwnApply | None:
        """The recorded apply ``entry`` is part of; None when it is not casdesired's."""
        if entry.run_date is None or not self.by_account(entry):
            return None
        return next((a for a in self.applies if a.covers(entry.run_date)), None)


def endpoint_applies(records: Iterable[PlanRecord], now: datetime) -> list[OwnApply]:
    """Windows of the endpoint's plan records (see the module's doc)."""
    ordered = sorted(records, key=lambda r: r.applied)
    applies = []
    for index, record in enumerate(ordered):
        later = ordered[index + 1].applied if index + 1 < len(ordered) else now
        end = record.ended if record.ended is not None else later
        applies.append(OwnApply(record.plan_id, record.applied, max(end, record.applied),
                                "endpoint", record.owner))
    return applies


def log_applies(entries: Iterable[Mapping[str, Any]], now: datetime) -> list[OwnApply]:
    """Windows of the applies in a runner's audit log: apply-started to apply-finished (an
    apply with no finished line yet: until now), widened by :data:`CLOCK_SKEW`."""
    started: dict[str, tuple[datetime, str]] = {}
    finished: dict[str, datetime] = {}
    for entry in entries:
        plan_id = entry.get("plan_id")
        when = parse_time(str(entry.get("time") or ""))
        if not isinstance(plan_id, str) or when is None:
            continue
        if entry.get("event") == "apply-started":
            started[plan_id] = (when, str(entry.get("who") or ""))
        elif entry.get("event") == "apply-finished":
            finished[plan_id] = when
    return [
        OwnApply(plan_id, start - CLOCK_SKEW, finished.get(plan_id, now) + CLOCK_SKEW,
                 "audit log", who)
        for plan_id, (start, who) in started.items()
    ]


def read_log(path: Path) -> list[dict[str, Any]]:
    """This runner's audit log (none: nothing applied from here)."""
    return list(local_log.entries(path))


def last_successful_apply(entries: Sequence[Mapping[str, Any]]) -> tuple[datetime, str] | None:
    """When the last apply that succeeded (exit code 0) started, and its plan id."""
    best: tuple[datetime, str] | None = None
    for entry in entries:
        if entry.get("event") != "apply-finished" or entry.get("exit_code") != 0:
            continue
        started = parse_time(str(entry.get("started") or entry.get("time") or ""))
        if started is not None and (best is None or started > best[0]):
            best = (started, str(entry.get("plan_id") or ""))
    return best


@dataclass(frozen=True)
class LastApplied:
    """What casdesired's own records say it last set on an object (the log has no old values)."""

    value: Mapping[str, Any]
    plan_id: str
    time: datetime


def last_applied(entries: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], LastApplied]:
    """(change kind, identity key) -> the value casdesired last applied there, from the
    ``apply-finished`` lines of this runner's audit log (changes reported ``applied``)."""
    found: dict[tuple[str, str], LastApplied] = {}
    for entry in _finished(entries):
        when = parse_time(str(entry.get("time") or ""))
        for change in entry.get("changes") or ():
            if not isinstance(change, Mapping) or change.get("result") != "applied":
                continue
            after, kind, identity = change.get("after"), change.get("kind"), change.get("identity")
            if when is None or not isinstance(after, Mapping) or not isinstance(identity, str):
                continue
            key = (str(kind), model.key(identity))
            if key not in found or found[key].time <= when:
                found[key] = LastApplied(after, str(entry.get("plan_id") or ""), when)
    return found


def _finished(entries: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    return (e for e in entries if e.get("event") == "apply-finished")

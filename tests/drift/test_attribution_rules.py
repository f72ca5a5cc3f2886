"""The rules behind an attribution, on plain data: account names in every form, apply windows,
the agent's dates, --since, and why an attribution is unknown."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from casdesired import model
from casdesired.changes.types import BindingChange
from casdesired.drift.attribution import Attributor, Status, canonical
from casdesired.drift.own import (
    OwnChanges,
    endpoint_applies,
    last_successful_apply,
    log_applies,
    same_account,
)
from casdesired.drift.run import parse_since
from casdesired.drift.sources import (
    AuditConfig,
    AuditEntry,
    AuditRead,
    PlanRecord,
    Unavailable,
    parse_span,
    parse_time,
)

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
CAS = "CONTOSO\\casadmin"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (CAS, "contoso.local/Users/casadmin", True),
        (CAS, "casadmin@contoso.local", True),
        (CAS, "CASADMIN", True),
        (CAS, "FABRIKAM\\casadmin", False),
        (CAS, "contoso.local/Users/casadmin2", False),
        (CAS, "contoso.local/Users/Cas Admin", False),  # a CN that is not the logon name
        ("contoso.local/Service Accounts/svc", "CONTOSO\\svc", True),
    ],
)
def test_one_account_in_every_form(a: str, b: str, same: bool) -> None:
    assert same_account(a, b) is same


def test_the_agents_dates_and_spans() -> None:
    assert parse_time("2024-05-01T08:00:00.0000000Z") == T0
    assert parse_time("2024-05-01T10:00:00.1234567+02:00") == T0 + timedelta(microseconds=123456)
    assert parse_time("2024-05-01T08:00:00") == T0  # the log's RunDate is UTC
    assert parse_time("01.05.2024 08:00:00") is None  # a culture's text is never guessed at
    assert parse_time("2024-02-30T00:00:00Z") is None
    assert parse_span("90.00:00:00") == timedelta(days=90)
    assert parse_span("12:30:00") == timedelta(hours=12, minutes=30)
    assert parse_span("90 days") is None


def test_since_takes_dates_times_and_spans_and_refuses_the_future() -> None:
    now = T0
    assert parse_since("2024-04-01", now) == datetime(2024, 4, 1, tzinfo=timezone.utc)
    assert parse_since("2024-04-30T10:00:00+02:00", now) == datetime(
        2024, 4, 30, 8, tzinfo=timezone.utc)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("12h", now) == now - timedelta(hours=12)
    for bad, why in (("2024-06-01", "future"), ("yesterday", "not a date"),
                     ("99999d", "ten years")):
        with pytest.raises(ValueError, match=why):
            parse_since(bad, now)


def test_apply_windows_end_with_the_lock_or_the_next_apply_or_now() -> None:
    records = [
        PlanRecord("p1", "ci", "l1", T0, T0 + timedelta(minutes=5)),
        PlanRecord("p2", "ci", "l2", T0 + timedelta(hours=1), None),  # killed, taken over
        PlanRecord("p3", "ci", "l3", T0 + timedelta(hours=2), None),  # running now
    ]
    now = T0 + timedelta(hours=3)
    windows = {a.plan_id: (a.start, a.end) for a in endpoint_applies(records, now)}
    assert windows == {
        "p1": (T0, T0 + timedelta(minutes=5)),
        "p2": (T0 + timedelta(hours=1), T0 + timedelta(hours=2)),
        "p3": (T0 + timedelta(hours=2), now),
    }
    log: list[dict[str, Any]] = [
        {"event": "apply-started", "plan_id": "p9", "time": "2024-05-01T08:00:00+00:00",
         "who": "me@runner"},
        {"event": "apply-finished", "plan_id": "p9", "time": "2024-05-01T08:10:00+00:00",
         "started": "2024-05-01T08:00:00+00:00", "exit_code": 0},
        {"event": "apply-finished", "plan_id": "p8", "time": "2024-04-01T08:10:00+00:00",
         "started": "2024-04-01T08:00:00+00:00", "exit_code": 1},
    ]
    (window,) = log_applies(log, now)
    assert (window.start, window.end) == (T0 - timedelta(minutes=2),
                                          T0 + timedelta(minutes=12))
    assert last_successful_apply(log) == (T0, "p9")


def entry(caller: str, when: datetime, target: str = "hq-cas02.contoso.local") -> AuditEntry:
    return AuditEntry(caller, "Set-MailboxDatabase",
                      (("Identity", "HQ-DB01"), ("RpcClientAccessServer", target)),
                      "HQ-DB01", when)


def attribute(audit: AuditRead, *, shown: str = "hq-cas02.contoso.local",
              applies: tuple[PlanRecord, ...] = ()) -> Status | str | None:
    estate = model.Estate()
    own = OwnChanges((CAS,), tuple(endpoint_applies(applies, T0 + timedelta(days=1))))
    attributor = Attributor(audit, own, canonical(estate), T0 + timedelta(days=1))
    change = BindingChange("HQ", "HQ-DB01", shown, "outlook-hq.contoso.local")
    found = attributor.change(change)
    return found.reason_code or found.status


def test_why_an_attribution_is_unknown() -> None:
    since = T0 - timedelta(days=1)
    nothing = AuditRead(since, 100, config=AuditConfig(True))
    assert attribute(nothing) == "no-entry"
    excluded = AuditRead(since, 100, config=AuditConfig(True, excluded=("Set-Mailbox*",)))
    assert attribute(excluded) == "not-logged"
    unlisted = AuditRead(since, 100, config=AuditConfig(True, parameters=("Fqdn",)))
    assert attribute(unlisted) == "not-logged"
    full = AuditRead(since, 1, config=AuditConfig(True), returned=1)
    assert attribute(full) == "truncated"
    aged = AuditRead(T0 - timedelta(days=100), 100,
                     config=AuditConfig(True, age_limit=timedelta(days=90)))
    assert attribute(aged) == "aged-out"
    hidden = AuditRead(since, 100, search_error=Unavailable("not recognized",
                                                            "CommandNotFoundException"))
    assert attribute(hidden) == "no-search"
    off = AuditRead(since, 100, config=AuditConfig(False),
                    entries=(entry("contoso.local/Users/alice", T0),))
    assert attribute(off) == "logging-disabled"


def test_casdesireds_last_word_is_not_drift_unless_exchange_shows_something_else() -> None:
    since = T0 - timedelta(days=1)
    record = PlanRecord("p1", "ci", "l1", T0, T0 + timedelta(minutes=5))
    own_entry = entry("contoso.local/Users/casadmin", T0 + timedelta(minutes=1))
    audit = AuditRead(since, 100, config=AuditConfig(True), entries=(own_entry,))
    assert attribute(audit, applies=(record,)) is Status.CASDESIRED
    assert attribute(audit, shown="hq-cas01.contoso.local", applies=(record,)) == (
        "changed-after-apply")
    assert attribute(audit) is Status.OUTSIDE  # its account, but no apply recorded
    later = AuditRead(since, 100, config=AuditConfig(True), entries=(
        own_entry, entry("contoso.local/Users/alice", T0 + timedelta(hours=1))))
    assert attribute(later, applies=(record,)) is Status.OUTSIDE
    what_if = AuditEntry("contoso.local/Users/alice", "Set-MailboxDatabase",
                         (("Identity", "HQ-DB01"), ("RpcClientAccessServer", "x"),
                          ("WhatIf", "True")), "HQ-DB01", T0 + timedelta(hours=2))
    with_what_if = AuditRead(since, 100, config=AuditConfig(True),
                             entries=(own_entry, what_if))
    assert attribute(with_what_if, applies=(record,)) is Status.CASDESIRED

"""Clock check: the endpoint host's clock against the runner's, and the lock's lease.

The lease is kept by the host's clock alone (the agent takes, renews and judges it), so skew
does not break the lock; it misleads the people reading lock times (``casdesired unlock`` shows
the host's) against the audit log's (the runner's), and Kerberos refuses a logon beyond 5
minutes of skew. The host's time comes from doctor's run; the runner's clock is read just before
sending and just after the answer, so the host's time must fall between them.
"""

from __future__ import annotations

from datetime import datetime, timezone

from casdesired.apply import lock as locking
from casdesired.doctor import outcome
from casdesired.doctor.lock import parse_time
from casdesired.doctor.model import Check, Status, check, skipped
from casdesired.doctor.probe import HOST, ProbeRun

TITLE = "clock skew between the runner and the endpoint host"
WARN_SECONDS = locking.KEEPALIVE_SECONDS
FAIL_SECONDS = 300
"""Kerberos' default tolerance, and a third of the lease: lock times shown by the host would
mislead a reader judging a lease by their own clock."""


def skew(run: ProbeRun) -> tuple[float, datetime] | None:
    """(seconds the host is ahead of the runner, negative when behind; the host's time)."""
    host = run.first(HOST)
    moment = parse_time(str(host.get("UtcNow"))) if host else None
    if moment is None:
        return None
    at = moment.timestamp()
    if at > run.finished:
        return at - run.finished, moment
    if at < run.started:
        return at - run.started, moment
    return 0.0, moment


def checks(run: ProbeRun, transport: str) -> list[Check]:
    if not run.ran:
        return [skipped("clock.skew", TITLE, outcome.not_run(run.error))]
    found = skew(run)
    if found is None:
        return [skipped("clock.skew", TITLE, "the host's time could not be read (see host)")]
    seconds, moment = found
    started = datetime.fromtimestamp(run.started, timezone.utc)
    finished = datetime.fromtimestamp(run.finished, timezone.utc)
    facts = (
        f"the host's clock read {moment:%Y-%m-%d %H:%M:%S} UTC during the run; the runner's "
        f"went from {started:%H:%M:%S} to {finished:%H:%M:%S} UTC",
        f"skew: {abs(seconds):.0f} s {'ahead' if seconds > 0 else 'behind'}" if seconds else
        "skew: none beyond the run's own duration",
        f"the lock's lease is {locking.DEFAULT_LEASE_SECONDS} s, kept by the host's clock",
    )
    remedy = (
        "Synchronise both clocks: on the host 'w32tm /resync' (a domain member follows the "
        "domain's time hierarchy); on the runner, NTP (chrony, systemd-timesyncd)."
    )
    if abs(seconds) >= FAIL_SECONDS:
        extra = ("Kerberos refuses logons beyond 5 minutes of skew" if transport == "kerberos"
                 else "lock times shown by the host would mislead anyone judging a lease by "
                 "their own clock")
        return [check("clock.skew", TITLE, Status.FAIL, (*facts, extra), remedy,
                      anchor="clock-skew")]
    if abs(seconds) >= WARN_SECONDS:
        return [check("clock.skew", TITLE, Status.WARN, facts, remedy, anchor="clock-skew")]
    return [check("clock.skew", TITLE, Status.PASS, facts)]

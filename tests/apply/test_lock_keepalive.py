"""apply's batches keep the organisation lock while they run, over real pywinrm and the lab.

execute() is given a 2-second lease and a 0.4-second keepalive, and every Set-MailboxDatabase
is made slow (0.5 s, a lab fault): a batch of six takes 3 s, longer than its lease. Another
pipeline acting from a thread meanwhile meets the lock; a lock broken mid-batch stops the batch
at once, and the report says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from apply.labenv import Env
from casdesired.agent import protocol
from casdesired.apply import execute
from casdesired.apply import lock as locking
from casdesired.changes.types import BindingChange

LOCK_ID = "cccccccc-0000-0000-0000-000000000003"
OTHER = "dddddddd-0000-0000-0000-000000000004"
LEASE = 2
KEEPALIVE = 0.4
WRITE_SECONDS = 0.5
DATABASES = [f"HQ-DB0{n}" for n in range(1, 7)]


def rebinds() -> list[BindingChange]:
    return [
        BindingChange(site="HQ", database=db, before_target="outlook-hq.contoso.local",
                      target="hq-cas02.contoso.local")
        for db in DATABASES
    ]


def take_lock(env: Env) -> None:
    entered = env.agent(locking.enter(LOCK_ID, "apply@runner", LEASE, None))
    assert entered.ok, entered.error
    env.lab.faults.update({"cmdlets": [{"cmdlet": "Set-MailboxDatabase",
                                        "delay_seconds": WRITE_SECONDS, "fail": False}]})


@contextmanager
def meanwhile(after: float, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` in a thread ``after`` seconds from now, while the block runs."""
    thread = threading.Thread(target=lambda: (time.sleep(after), action()), daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(timeout=30)


def run(env: Env) -> execute.Execution:
    return execute.execute(env.client(), list(rebinds()), lock_id=LOCK_ID, plan_id="plan-lease",
                           lease_seconds=LEASE, keepalive_seconds=KEEPALIVE)


def test_a_batch_longer_than_its_lease_keeps_the_lock(env: Env) -> None:
    take_lock(env)
    seen: list[protocol.Result] = []
    started = time.monotonic()
    # At 2.5 s the lease taken at the start of the batch has run out: only renewals keep it.
    with meanwhile(2.5, lambda: seen.append(
            env.agent(locking.enter(OTHER, "other@runner", LEASE, None)))):
        result = run(env)
    assert time.monotonic() - started > LEASE + 0.5  # the batch really outlasted the lease
    assert result.ok and result.stopped is None
    assert not seen[0].ok and seen[0].error is not None
    assert "the organisation is locked by apply@runner" in seen[0].error.message
    current = env.current_lock()
    assert current is not None and current.lock_id == LOCK_ID
    renewals = [e for e in env.cmdlets() if e["cmdlet"] == "Update-CasdesiredLock"]
    assert len(renewals) >= 4 and all(e["ok"] for e in renewals)


def test_a_lock_broken_mid_batch_stops_it_and_the_report_says_why(env: Env) -> None:
    take_lock(env)
    with meanwhile(1.2, lambda: env.agent(locking.remove(LOCK_ID))):  # casdesired unlock
        result = run(env)
    statuses = [o.status for o in result.outcomes]
    applied = statuses.count(execute.Status.APPLIED)
    assert 1 <= applied < len(DATABASES)
    assert statuses == ([execute.Status.APPLIED] * applied
                        + [execute.Status.NOT_ATTEMPTED] * (len(DATABASES) - applied))
    assert result.stopped is not None
    assert result.stopped.startswith("renewing the lock's lease failed while batch 1 ran, so "
                                     "the agent ran nothing more (stopped: the "
                                     "keepalive Update-CasdesiredLock failed: casdesired: lock "
                                     f"{LOCK_ID} is not held here")
    # The journal agrees: exactly the applied writes ran, none after the failed renewal.
    journal = [(e["cmdlet"], e["ok"]) for e in env.cmdlets()]
    writes = [c for c, _ in journal if c == "Set-MailboxDatabase"]
    assert len(writes) == applied
    failed = journal.index(("Update-CasdesiredLock", False))
    assert "Set-MailboxDatabase" not in [c for c, _ in journal[failed:]]
    assert env.current_lock() is None

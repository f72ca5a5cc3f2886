"""The organisation lock under every interleaving of two agents, file operation by operation.

The lab's lock functions (casdesired/lab/exchange/locks.py, step for step the same as
agent.ps1) are generators that yield before each file operation. Here two of them run against
one modelled file system (:class:`LockFiles`: exclusive handles, sharing violations) in EVERY
possible order, and no order may leave two agents believing they hold the lock. The old
algorithm (read, delete, CreateNew), modelled the same way, is shown to fail under the same
explorer, so the explorer really can find a double holder.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange import locks
from casdesired.lab.exchange.lockfiles import LockFiles
from casdesired.lab.exchange.locks import APPLIED_DIR, LOCK_PATH

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
ATTEMPTS = 2
"""Opens per lock function before it gives up (agent.ps1: 200); small keeps the tree small."""

Contender = Callable[[LockFiles], Generator[str, None, Any]]


def lock_text(lock_id: str, owner: str, expires: datetime) -> str:
    return json.dumps({
        "lock_id": lock_id, "owner": owner, "plan_id": "",
        "acquired": locks._iso(expires - timedelta(seconds=900)),
        "expires": locks._iso(expires),
    })


EXPIRED_X = {LOCK_PATH: lock_text("x-lock", "killed@job", NOW - timedelta(seconds=5))}
LIVE_A = {LOCK_PATH: lock_text("a-lock", "a@runner", NOW + timedelta(seconds=600))}


def enter(lock_id: str) -> Contender:
    args = {"LockId": lock_id, "Owner": f"{lock_id}@runner", "LeaseSeconds": 900}
    return lambda files: locks.enter_steps(files, NOW, args, attempts=ATTEMPTS)


def renew(lock_id: str) -> Contender:
    args = {"LockId": lock_id, "LeaseSeconds": 900}
    return lambda files: locks.update_steps(files, NOW, args, attempts=ATTEMPTS)


def release(lock_id: str) -> Contender:
    return lambda files: locks.exit_steps(files, NOW, {"LockId": lock_id}, attempts=ATTEMPTS)


def unlock(lock_id: str) -> Contender:
    return lambda files: locks.remove_steps(files, NOW, {"LockId": lock_id}, attempts=ATTEMPTS)


def register(lock_id: str, plan_id: str) -> Contender:
    args = {"LockId": lock_id, "PlanId": plan_id}
    return lambda files: locks.register_steps(files, NOW, args, attempts=ATTEMPTS)


@dataclass
class Run:
    """One complete interleaving: the order taken, each contender's outcome, the files after."""

    order: list[int]
    outcomes: list[tuple[str, Any]]
    """("ok", returned objects) or ("error", message)."""
    files: dict[str, str]

    def ok(self, index: int) -> bool:
        return self.outcomes[index][0] == "ok"

    def holder(self) -> str | None:
        lock = locks.parse_lock(self.files.get(LOCK_PATH, ""))
        return None if lock is None else str(lock["lock_id"])


def replay(
    contenders: list[Contender], initial: dict[str, str], order: list[int]
) -> tuple[LockFiles, list[tuple[str, Any] | None]]:
    """Start every contender afresh on a copy of ``initial`` and advance them in ``order``."""
    files = LockFiles(dict(initial))
    running = [make(files) for make in contenders]
    outcomes: list[tuple[str, Any] | None] = [None] * len(contenders)
    for index in order:
        try:
            next(running[index])
        except StopIteration as done:
            outcomes[index] = ("ok", done.value)
        except err.ExchangeError as exc:
            outcomes[index] = ("error", exc.message)
    return files, outcomes


def every_interleaving(contenders: list[Contender], initial: dict[str, str]) -> Iterator[Run]:
    """Depth-first over every order of the contenders' steps (each prefix replayed afresh)."""
    stack: list[list[int]] = [[]]
    while stack:
        order = stack.pop()
        files, outcomes = replay(contenders, initial, order)
        unfinished = [i for i, o in enumerate(outcomes) if o is None]
        if not unfinished:
            yield Run(order, [o for o in outcomes if o is not None], files.files)
            continue
        stack.extend([*order, i] for i in unfinished)


def random_interleavings(
    contenders: list[Contender], initial: dict[str, str], count: int, seed: int
) -> Iterator[Run]:
    rng = random.Random(seed)
    for _ in range(count):
        order: list[int] = []
        while True:
            files, outcomes = replay(contenders, initial, order)
            unfinished = [i for i, o in enumerate(outcomes) if o is None]
            if not unfinished:
                yield Run(order, [o for o in outcomes if o is not None], files.files)
                break
            order.append(rng.choice(unfinished))


def test_two_takeovers_of_one_expired_lock_never_both_win() -> None:
    runs = list(every_interleaving([enter("a-lock"), enter("b-lock")], EXPIRED_X))
    assert len(runs) > 20  # really many orders, not one
    outcomes_seen = set()
    for run in runs:
        winners = [i for i in (0, 1) if run.ok(i)]
        assert len(winners) == 1, run
        winner = winners[0]
        assert run.holder() == ("a-lock", "b-lock")[winner]
        (lock_object,) = run.outcomes[winner][1]
        assert lock_object["TakenOverFrom"] == "killed@job (lock x-lock)"
        loser_message = run.outcomes[1 - winner][1]
        assert loser_message.startswith((
            f"casdesired: the organisation is locked by {run.holder()}@runner",
            "casdesired: the lock file",  # its opens all met the winner's handle
        )), loser_message
        outcomes_seen.add((winner, loser_message.split(" ")[2]))
    # Both contenders win in some order, and the loser is refused both ways somewhere.
    assert {w for w, _ in outcomes_seen} == {0, 1}
    assert {reason for _, reason in outcomes_seen} == {"organisation", "lock"}


def test_two_agents_finding_no_lock_never_both_win() -> None:
    for run in every_interleaving([enter("a-lock"), enter("b-lock")], {}):
        assert [run.ok(0), run.ok(1)].count(True) == 1, run
        assert run.holder() == ("a-lock" if run.ok(0) else "b-lock")


def test_a_takeover_and_the_late_holders_renewal_never_both_succeed() -> None:
    # x-lock's holder is slow, not dead: it renews just as its lease has run out.
    both_ways = set()
    for run in every_interleaving([enter("b-lock"), renew("x-lock")], EXPIRED_X):
        assert [run.ok(0), run.ok(1)].count(True) == 1, run
        if run.ok(1):
            assert run.holder() == "x-lock"
            assert "locked by killed@job" in run.outcomes[0][1] or "lock file" in (
                run.outcomes[0][1])
        else:
            assert run.holder() == "b-lock"
            assert run.outcomes[1][1].startswith((
                "casdesired: lock x-lock is not held here (the current lock: b-lock held by",
                "casdesired: the lock file",
            ))
        both_ways.add(run.ok(1))
    assert both_ways == {True, False}


@pytest.mark.parametrize("ender", [release, unlock], ids=["release", "unlock"])
def test_a_release_or_unlock_never_frees_a_lock_taken_in_between(
    ender: Callable[[str], Contender],
) -> None:
    for run in every_interleaving([ender("x-lock"), enter("b-lock")], EXPIRED_X):
        if run.ok(1):
            assert run.holder() == "b-lock", run  # the release/unlock did not wipe it
        else:
            assert run.holder() is None  # b was refused only by an open it could not get
            assert "lock file" in run.outcomes[1][1]


@pytest.mark.parametrize("initial", [{}, EXPIRED_X], ids=["no-lock", "expired-lock"])
def test_a_late_enter_of_a_released_lock_id_never_leaves_it_held(initial: dict[str, str]) -> None:
    # apply lost the answer to its lock-and-read request and released its lock id, while that
    # request (still loading Exchange) may not have run its Enter yet.
    orders = set()
    for run in every_interleaving([release("a-lock"), enter("a-lock")], initial):
        if not run.ok(0) and "lock file" in run.outcomes[0][1]:
            # The release never got the file (another handle all along): apply says the lock
            # may still be held and prints the unlock command.
            continue
        assert run.holder() != "a-lock", run
        # Enter first: the release finds its lock and frees it. Release first: Enter is
        # refused, the id having ended (or it never got the file).
        if run.ok(0):
            (answer,) = run.outcomes[0][1]
            assert answer == {"LockId": "a-lock", "Released": run.ok(1)}, run
        else:  # x-lock's still there: the release says whose it is, not ours
            assert run.outcomes[0][1].startswith("casdesired: lock a-lock is not held here (the "
                                                 "current lock: x-lock held by killed@job)"), run
        if not run.ok(1):
            assert run.outcomes[1][1].startswith((
                "casdesired: lock a-lock was released or broken already",
                "casdesired: the lock file",
            )), run
        orders.add(run.ok(1))
    assert orders == {True, False}


def test_a_plan_is_recorded_only_by_the_holder_it_checked() -> None:
    record = f"{APPLIED_DIR}p-1.json"
    both_ways = set()
    for run in every_interleaving([register("x-lock", "p-1"), enter("b-lock")], EXPIRED_X):
        assert (record in run.files) == run.ok(0), run
        both_ways.add(run.ok(0))
    assert both_ways == {True, False}


def test_three_agents_at_random_orders() -> None:
    contenders = [enter("a-lock"), enter("b-lock"), renew("x-lock")]
    for run in random_interleavings(contenders, EXPIRED_X, count=400, seed=7):
        assert [run.ok(i) for i in range(3)].count(True) <= 1, run
        winner = next((i for i in range(3) if run.ok(i)), None)
        expected = None if winner is None else ("a-lock", "b-lock", "x-lock")[winner]
        assert run.holder() == (expected or "x-lock"), run


def test_a_live_lock_is_never_taken_over() -> None:
    for run in every_interleaving([enter("b-lock"), enter("c-lock")], LIVE_A):
        assert not run.ok(0) and not run.ok(1)
        assert run.holder() == "a-lock"


def test_a_writer_killed_mid_write_leaves_a_free_lock() -> None:
    files = LockFiles({LOCK_PATH: '{"lock_id":"dead","owner":"x@y","acq'})
    (taken,) = locks.run_steps(
        locks.enter_steps(files, NOW, {"LockId": "b-lock", "Owner": "b", "LeaseSeconds": 9})
    )
    assert taken["TakenOverFrom"] == locks.UNREADABLE
    assert locks.parse_lock(files.files[LOCK_PATH])["lock_id"] == "b-lock"  # type: ignore[index]


# --- the old algorithm, to show the explorer finds double holders -----------------------------
def old_enter(lock_id: str) -> Contender:
    """agent.ps1 before: read; if expired, Delete(); then CreateNew (fails if it exists)."""

    def steps(files: LockFiles) -> Generator[str, None, str]:
        yield "read"
        current = locks.parse_lock(files.files.get(LOCK_PATH, ""))
        if current is not None:
            if locks._parse_time(current["expires"]) > NOW:
                raise err.ExchangeError("held")
            yield "delete"
            files.files.pop(LOCK_PATH, None)
        yield "create-new"
        if not files.create_new(LOCK_PATH, lock_text(lock_id, lock_id, NOW + timedelta(1))):
            raise err.ExchangeError("exists")
        return lock_id

    return steps


def test_the_explorer_finds_the_old_algorithms_double_holder() -> None:
    doubles = [
        run for run in every_interleaving([old_enter("a-lock"), old_enter("b-lock")], EXPIRED_X)
        if run.ok(0) and run.ok(1)
    ]
    assert doubles, "the old delete-then-CreateNew takeover should admit two holders"

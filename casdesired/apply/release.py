"""Giving the organisation lock back when an apply does not end with its verifying read.

The verifying read releases the lock in the same execution (:mod:`.run`). Every other way an
apply can end after it may have taken the lock — a refusal, an error, a lost answer to the
lock-and-read execution — releases it here, with the apply's own lock id and no Exchange
session. When the apply failed, the operator is told whether the lock is still held; a release
that fails is always said, with the exact command that breaks the lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from casdesired.agent import protocol
from casdesired.apply import lock as locking
from casdesired.apply.report import say
from casdesired.errors import CasdesiredError
from casdesired.transport.winrm import AgentClient


def release_lock(
    client: AgentClient,
    lock_id: str,
    organisation_dir: Path,
    err: TextIO,
    *,
    announce: bool,
) -> None:
    """Release ``lock_id``; with ``announce`` (the apply failed) say so when it worked too."""
    request = protocol.Request(
        invocations=(locking.release(lock_id),),
        exchange=protocol.ExchangeSession(mode="none"),
    )
    try:
        response = client.run(request)
    except CasdesiredError as exc:
        say(err, may_still_be_held(lock_id, organisation_dir, str(exc)))
        return
    result = response.result(locking.EXIT)
    if result is None or not result.ok:
        why = locking.agent_text(result.error.message) if result and result.error else (
            "the agent gave no answer to the release"
        )
        if locking.NOT_HELD_MARKER in why:
            # Someone else's lock: ours is not held, and the agent says whose is.
            say(err, f"casdesired: warning: {why}")
        else:
            say(err, may_still_be_held(lock_id, organisation_dir, why))
        return
    if announce:
        say_released(result, lock_id, err)


def say_released(result: protocol.Result, lock_id: str, err: TextIO) -> None:
    """Where the lock stands after ``Exit-CasdesiredLock`` answered ``result`` (ok)."""
    if result.objects and result.objects[0].get("Released"):
        say(err, f"casdesired: released lock {lock_id}: this apply does not hold the "
                 "organisation lock any more")
    else:
        # Not taken, or released already by a request whose answer was lost. Exit ended the
        # id as well: a late Enter with it is refused.
        say(err, f"casdesired: lock {lock_id} is not held: the organisation is not locked by "
                 "this apply, and a late request of this apply can no longer lock it")


def may_still_be_held(lock_id: str, organisation_dir: Path, why: str) -> str:
    return (
        f"casdesired: warning: lock {lock_id} may still be held: releasing it failed ({why}). "
        f"It ends with its lease, {locking.DEFAULT_LEASE_SECONDS // 60} minutes after its "
        f"last renewal; to break it now: {locking.unlock_command(lock_id, organisation_dir)}"
    )


def kept_warning(lock_id: str, organisation_dir: Path) -> str:
    """Why the lock stays held after a write batch whose answer was lost, and how to end it."""
    return (
        f"casdesired: warning: lock {lock_id} is kept, so the organisation stays locked: the "
        "batch whose answer was lost may still be running on the endpoint, and releasing "
        "would let another apply write beside it. The lock ends with its lease, "
        f"{locking.DEFAULT_LEASE_SECONDS // 60} minutes after that batch stops; once you have "
        "checked the server, break it with: "
        f"{locking.unlock_command(lock_id, organisation_dir)}"
    )

"""The agent's lock functions, as the lab runs them (mirror of the lock section of agent.ps1).

On Windows the organisation-wide lock is one file, ``%ProgramData%\\casdesired\\locks\\
organisation.lock``; every plan that started writing leaves a record under
``%ProgramData%\\casdesired\\applied\\``, and every lock id that ended (released or broken)
one under ``...\\released\\``, so it is never taken again. Before each write of a fenced
request the agent checks that its lock is still current (:func:`fence_steps`). The lab keeps
those files in its state document (``OrgState.files``: Windows path -> file text), so the lock
survives lab restarts exactly as the file survives on the endpoint host.

Every look at or change of the lock file is one read-modify-write under an EXCLUSIVE handle
(``[IO.File]::Open(path, mode, ReadWrite, FileShare.None)``): while one agent holds it, any
other open of that file fails with a sharing violation and is retried, so no interleaving of
two agents can act on a lock another one is changing. agent.ps1's comment above
Enter-CasdesiredLock lists the interleavings this rules out, and why the file is never deleted
or renamed (an empty lock file is a free lock).

To let a test interleave two contenders operation by operation, the file system is modelled
explicitly (:class:`~.lockfiles.LockFiles`: open, read, write, close, with sharing violations)
and each lock function is a generator (``*_steps``) that yields the name of the file operation
it is about to perform. The lab drives a generator to its end inside one cmdlet call
(:func:`run_steps`); tests drive several against one :class:`LockFiles` in any order.

The functions are defined by the agent script itself, so they exist whatever the Exchange
session mode; their parameters are bound as strictly as any cmdlet's (an unknown parameter
fails). :mod:`.agent_functions` registers them. Texts are the same strings agent.ps1 throws.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from datetime import datetime, timedelta, timezone
from typing import Any

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.binding import Obj
from casdesired.lab.exchange.lockfiles import AccessDenied, Handle, LockFiles, SharingViolation

LOCK_PATH = "C:\\ProgramData\\casdesired\\locks\\organisation.lock"
APPLIED_DIR = "C:\\ProgramData\\casdesired\\applied\\"
ENDED_DIR = "C:\\ProgramData\\casdesired\\released\\"
"""Where a lock id that was released or broken is recorded, so it is never taken again."""
_SAFE_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")

OPEN_ATTEMPTS = 200
"""How often an open that meets a sharing violation is tried (agent.ps1: every 50 ms, 10 s)."""
RETRY_SECONDS = 0.05

# agent.ps1's texts.
LOCK_HELD = (
    "casdesired: the organisation is locked by {owner} since {acquired} (lock {lock_id}, "
    "plan {plan_id}, lease until {expires}). Wait for it, or break it deliberately with: "
    "casdesired unlock {lock_id}"
)
NOT_HELD = "casdesired: lock {lock_id} is not held here (the current lock: {current})."
ALREADY_APPLIED = (
    "casdesired: plan {plan_id} was already applied here on {applied} by {owner}; "
    "make a new plan."
)
ENDED = (
    "casdesired: lock {lock_id} was released or broken already; a lock id is never taken twice "
    "(every apply takes a new one)."
)
BAD_ID = "casdesired: '{value}' is not a valid {what} (letters, digits and '-', at most 64)."
LOCK_BUSY = (
    "casdesired: the lock file {path} stayed in use by another process for 10 seconds; "
    "try again."
)
OPEN_REFUSED = 'Exception calling "Open" with "4" argument(s): "{reason}"'
"""PowerShell's wrapping of [IO.File]::Open's exception (here: access to the path denied)."""
UNREADABLE = "an unreadable lock (its writer was stopped mid-write)"
"""TakenOverFrom when the file held something that is not a lock record."""
Steps = Generator[str, None, list[Obj]]
"""A lock function as a generator: yields the file operation it is about to perform."""


def _thrown(message: str) -> err.ExchangeError:
    """What ``throw "text"`` makes in PowerShell (as the agent executor reports it)."""
    return err.ExchangeError(message, target=message, category="RuntimeException")


def _iso(moment: datetime) -> str:
    """``[DateTime]::UtcNow.ToString('o')``: seven fractional digits and Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)


def _check_id(value: str, what: str) -> str:
    # Ids become part of file names: anything but a plain id could leave the folder.
    if not _SAFE_ID.match(value):
        raise _thrown(BAD_ID.format(value=value, what=what))
    return value


def parse_lock(text: str) -> dict[str, Any] | None:
    """A lock file's record; None when it is empty (free) or not a lock record (a writer was
    killed mid-write: nobody can be relying on it)."""
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) for k in ("lock_id", "owner", "acquired", "expires")
    ):
        return None
    try:
        _parse_time(data["expires"])
    except ValueError:
        return None
    return dict(data)


def _describe(lock: dict[str, Any] | None) -> str:
    if lock is None:
        return "none"
    return f"{lock['lock_id']} held by {lock['owner']}"


def _lock_object(lock: dict[str, Any], taken_over_from: str | None = None) -> Obj:
    return {
        "LockId": lock["lock_id"],
        "Owner": lock["owner"],
        "PlanId": lock.get("plan_id") or None,
        "Acquired": lock["acquired"],
        # A lock written before renewals were recorded was last renewed when it was taken.
        "Renewed": lock.get("renewed") or lock["acquired"],
        "Expires": lock["expires"],
        "Path": LOCK_PATH,
        "TakenOverFrom": taken_over_from,
    }


def _serialise(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def _applied_record(files: LockFiles, plan_id: str) -> dict[str, Any] | None:
    text = files.files.get(f"{APPLIED_DIR}{plan_id}.json")
    return None if text is None else dict(json.loads(text))


def _refuse_applied(files: LockFiles, plan_id: str) -> None:
    record = _applied_record(files, plan_id)
    if record is not None:
        raise _thrown(
            ALREADY_APPLIED.format(
                plan_id=plan_id, applied=record["applied"], owner=record["owner"]
            )
        )


def _record_end(files: LockFiles, lock_id: str, now: datetime) -> None:
    """Register-LockEnd (the lock file's handle is open): ``lock_id`` has ended for good."""
    files.create_new(
        f"{ENDED_DIR}{lock_id}.json", _serialise({"lock_id": lock_id, "ended": _iso(now)})
    )


def _open(
    files: LockFiles, *, create: bool, attempts: int
) -> Generator[str, None, Handle | None]:
    """Open-LockFile: the exclusive open, retried while another agent holds the file."""
    for _ in range(attempts):
        yield "open"
        try:
            return files.open_exclusive(LOCK_PATH, create=create)
        except SharingViolation:
            yield "wait"
        except AccessDenied as denied:
            # [IO.File]::Open's UnauthorizedAccessException, as the agent's catch rethrows it.
            raise _thrown(OPEN_REFUSED.format(reason=denied)) from None
    raise _thrown(LOCK_BUSY.format(path=LOCK_PATH))


def enter_steps(
    files: LockFiles, now: datetime, args: dict[str, Any], *, attempts: int = OPEN_ATTEMPTS
) -> Steps:
    """Enter-CasdesiredLock: take the lock if it is free, expired, or already ours."""
    lock_id = _check_id(args["LockId"], "lock id")
    plan_id = _check_id(args["PlanId"], "plan id") if args.get("PlanId") else ""
    if plan_id:
        _refuse_applied(files, plan_id)
    handle = yield from _open(files, create=True, attempts=attempts)
    assert handle is not None  # create=True always opens
    try:
        yield "check-ended"
        if f"{ENDED_DIR}{lock_id}.json" in files.files:
            raise _thrown(ENDED.format(lock_id=lock_id))
        yield "read"
        text = files.read(handle)
        current = parse_lock(text)
        taken_over_from: str | None = None
        if current is None and text.strip():
            taken_over_from = UNREADABLE
        if current is not None and current["lock_id"] != lock_id:
            if _parse_time(current["expires"]) > now:
                raise _thrown(
                    LOCK_HELD.format(**{**current, "plan_id": current.get("plan_id") or "-"})
                )
            # The lease ran out (a killed job). Nobody else can touch the file while we hold
            # the handle, so replacing its content is the whole takeover.
            taken_over_from = f"{current['owner']} (lock {current['lock_id']})"
        lock = {
            "lock_id": lock_id,
            "owner": args["Owner"],
            "plan_id": plan_id,
            "acquired": _iso(now),
            "renewed": _iso(now),
            "expires": _iso(now + timedelta(seconds=args["LeaseSeconds"])),
        }
        yield "write"
        files.write(handle, _serialise(lock))
        yield "close"
    finally:
        files.close(handle)
    return [_lock_object(lock, taken_over_from)]


def _held(files: LockFiles, handle: Handle, lock_id: str) -> dict[str, Any]:
    current = parse_lock(files.read(handle))
    if current is None or current["lock_id"] != lock_id:
        raise _thrown(NOT_HELD.format(lock_id=lock_id, current=_describe(current)))
    return current


def update_steps(
    files: LockFiles, now: datetime, args: dict[str, Any], *, attempts: int = OPEN_ATTEMPTS
) -> Steps:
    """Update-CasdesiredLock: renew the lease of a lock that is still ours, else fail."""
    lock_id = _check_id(args["LockId"], "lock id")
    handle = yield from _open(files, create=False, attempts=attempts)
    if handle is None:
        raise _thrown(NOT_HELD.format(lock_id=lock_id, current="none"))
    try:
        yield "read"
        lock = _held(files, handle, lock_id)
        lock["renewed"] = _iso(now)
        lock["expires"] = _iso(now + timedelta(seconds=args["LeaseSeconds"]))
        yield "write"
        files.write(handle, _serialise(lock))
        yield "close"
    finally:
        files.close(handle)
    return [_lock_object(lock)]


def exit_steps(
    files: LockFiles, now: datetime, args: dict[str, Any], *, attempts: int = OPEN_ATTEMPTS
) -> Steps:
    """Exit-CasdesiredLock: empty the file if the lock is ours; nothing if it is free. Either
    way the id has ended: a late Enter with it is refused. Says whether it released the lock."""
    lock_id = _check_id(args["LockId"], "lock id")
    handle = yield from _open(files, create=True, attempts=attempts)
    assert handle is not None  # create=True always opens
    released = False
    try:
        yield "record-end"
        _record_end(files, lock_id, now)
        yield "read"
        if parse_lock(files.read(handle)) is not None:  # else free already (broken with unlock)
            _held(files, handle, lock_id)
            yield "write"
            files.write(handle, "")
            released = True
        yield "close"
    finally:
        files.close(handle)
    return [{"LockId": lock_id, "Released": released}]


def remove_steps(
    files: LockFiles, now: datetime, args: dict[str, Any], *, attempts: int = OPEN_ATTEMPTS
) -> Steps:
    """Remove-CasdesiredLock (``casdesired unlock``): break the lock named, whoever holds it."""
    lock_id = _check_id(args["LockId"], "lock id")
    handle = yield from _open(files, create=False, attempts=attempts)
    if handle is None:
        raise _thrown(NOT_HELD.format(lock_id=lock_id, current="none"))
    try:
        yield "read"
        lock = _held(files, handle, lock_id)
        yield "record-end"
        _record_end(files, lock_id, now)
        yield "write"
        files.write(handle, "")
        yield "close"
    finally:
        files.close(handle)
    return [_lock_object(lock)]


def fence_steps(
    files: LockFiles, now: datetime, args: dict[str, Any], *, attempts: int = OPEN_ATTEMPTS
) -> Steps:
    """Assert-CasdesiredFence (the agent's check before a write, not a command a request can
    name): fail unless ``LockId`` is the current lock."""
    lock_id = args["LockId"]
    handle = yield from _open(files, create=False, attempts=attempts)
    if handle is None:
        raise _thrown(NOT_HELD.format(lock_id=lock_id, current="none"))
    try:
        yield "read"
        text = files.read(handle)
        yield "close"
    finally:
        files.close(handle)
    current = parse_lock(text)
    if current is None or current["lock_id"] != lock_id:
        raise _thrown(NOT_HELD.format(lock_id=lock_id, current=_describe(current)))
    return []


def get_steps(
    files: LockFiles, now: datetime, args: dict[str, Any], *, attempts: int = OPEN_ATTEMPTS
) -> Steps:
    """Get-CasdesiredLock: the current lock, if any (also when its lease ran out)."""
    handle = yield from _open(files, create=False, attempts=attempts)
    if handle is None:
        return []
    try:
        yield "read"
        current = parse_lock(files.read(handle))
        yield "close"
    finally:
        files.close(handle)
    return [] if current is None else [_lock_object(current)]


def register_steps(
    files: LockFiles, now: datetime, args: dict[str, Any], *, attempts: int = OPEN_ATTEMPTS
) -> Steps:
    """Register-CasdesiredPlan: while holding the lock file, record the plan as applied."""
    lock_id = _check_id(args["LockId"], "lock id")
    plan_id = _check_id(args["PlanId"], "plan id")
    handle = yield from _open(files, create=False, attempts=attempts)
    if handle is None:
        raise _thrown(NOT_HELD.format(lock_id=lock_id, current="none"))
    try:
        yield "read"
        lock = _held(files, handle, lock_id)
        _refuse_applied(files, plan_id)
        record = {
            "plan_id": plan_id, "owner": lock["owner"], "lock_id": lock_id, "applied": _iso(now)
        }
        yield "create-record"
        if not files.create_new(f"{APPLIED_DIR}{plan_id}.json", _serialise(record)):
            _refuse_applied(files, plan_id)  # created in between: say by whom
        yield "close"
    finally:
        files.close(handle)
    return [{"PlanId": plan_id, "Applied": record["applied"]}]


def run_steps(steps: Steps) -> list[Obj]:
    """Drive a lock function to its end (the lab: no other agent holds a handle meanwhile)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: list[Obj] = done.value
            return result

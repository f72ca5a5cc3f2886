"""Lock checks: where the organisation lock lives on the endpoint, and whether one is held.

From doctor's run: ``Get-CasdesiredLockDirectory`` (the folder, or its nearest existing parent,
and whether its access rules let the account create and write there; nothing is written to find
out) and ``Get-CasdesiredLock`` (the current lock, also one whose lease ran out), judged by the
host's own clock (``Get-CasdesiredHost``), the clock the lease is kept by.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from casdesired.apply import lock as locking
from casdesired.doctor import outcome
from casdesired.doctor.model import Check, Status, check, skipped
from casdesired.doctor.probe import HOST, LOCK, LOCK_DIRECTORY, ProbeRun

TITLES = {
    "lock.directory": "the lock's folder exists or can be created by this account",
    "lock.held": "no stale lock is held",
}
_FRACTION = re.compile(r"\.(\d+)")


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 UTC time as the agent writes it (``...T09:12:44.1234567Z``)."""
    cleaned = _FRACTION.sub(lambda m: "." + m.group(1)[:6], text.strip()).replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def checks(run: ProbeRun, organisation_dir: Path) -> list[Check]:
    if not run.ran:
        return [skipped(i, t, outcome.not_run(run.error)) for i, t in TITLES.items()]
    return [_directory(run), _held(run, organisation_dir)]


def _directory(run: ProbeRun) -> Check:
    title = TITLES["lock.directory"]
    found = run.first(LOCK_DIRECTORY)
    if found is None:
        result = run.result(LOCK_DIRECTORY)
        said = result.error.message if result is not None and result.error else "no answer"
        return check("lock.directory", title, Status.FAIL,
                     (f"Get-CasdesiredLockDirectory failed: {said}",),
                     "See the error.", anchor="lock-directory")
    directory, user = found.get("Directory"), found.get("User")
    nearest = found.get("NearestExisting")
    if found.get("Writable") is not True:
        where = directory if found.get("Exists") is True else nearest
        return check(
            "lock.directory", title, Status.FAIL,
            (f"{directory} {'exists' if found.get('Exists') else 'does not exist'}; the access "
             f"rules of {where} do not let {user} create and write files there",
             "every apply takes the lock there first, and would be refused"),
            f"On the endpoint, in an elevated prompt: 'mkdir {directory}' and 'icacls "
            f"{str(directory).rsplit(chr(92), 1)[0]} /grant \"{user}:(OI)(CI)M\"'.",
            anchor="lock-directory",
        )
    if found.get("Exists") is True:
        return check("lock.directory", title, Status.PASS,
                     (f"{directory} exists; {user} may create and write files there",))
    return check("lock.directory", title, Status.PASS,
                 (f"{directory} does not exist yet; the access rules of {nearest} let {user} "
                  "create it (the first apply does)",))


def _held(run: ProbeRun, organisation_dir: Path) -> Check:
    title = TITLES["lock.held"]
    result = run.result(LOCK)
    if result is None or not result.ok:
        said = result.error.message if result is not None and result.error else "not run"
        return check("lock.held", title, Status.FAIL, (f"Get-CasdesiredLock failed: {said}",),
                     "See lock.directory: the lock is read through an exclusive read-write "
                     "handle, which needs write access too.", anchor="lock-directory")
    if not result.objects:
        return check("lock.held", title, Status.PASS, ("no lock is held",))
    info = locking.LockInfo.from_object(result.objects[0])
    host = run.first(HOST)
    now = parse_time(str(host.get("UtcNow"))) if host else None
    acquired, expires = parse_time(info.acquired), parse_time(info.expires)
    facts = [info.describe()]
    if now is not None and acquired is not None:
        facts.append(f"taken {(now - acquired).total_seconds() / 60:.0f} min ago by the host's "
                     "clock")
    unlock = locking.unlock_command(info.lock_id, organisation_dir)
    if now is not None and expires is not None and expires <= now:
        return check("lock.held", title, Status.WARN,
                     (*facts, "its lease ran out: a stale lock (a killed apply's); the next "
                      "apply takes it over"),
                     f"Nothing is needed; to clear it now: {unlock}", anchor="lock-held")
    return check("lock.held", title, Status.WARN,
                 (*facts, "its lease runs: an apply holds it now, or one was killed less than "
                  "a lease ago; another apply waits for it (--lock-timeout) or is refused"),
                 f"Wait for that apply. If you know it is gone: {unlock}", anchor="lock-held")

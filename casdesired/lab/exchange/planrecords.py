"""The plans applied on the endpoint, as ``casdesired drift`` reads them (mirror of agent.ps1's
Get-CasdesiredPlanRecord).

Every plan that started writing left ``%ProgramData%\\casdesired\\applied\\<plan id>.json``
(Register-CasdesiredPlan, :mod:`.locks`): the plan id, the owner, when it registered and the lock
it ran under; every lock id that ended left ``...\\released\\<lock id>.json`` with the time. The
function answers one object per record applied since ``-Since`` (ISO 8601 UTC; all without it),
with ``Ended``, when its lock ended (None while it is held, or for a lock that was taken over
after its lease ran out, or a record written before records named their lock). Both are read
with the lock file's exclusive handle open, as they are written, so no record is read
half-written; with no lock file nothing was ever applied here.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.binding import Obj
from casdesired.lab.exchange.lockfiles import LockFiles
from casdesired.lab.exchange.locks import (
    APPLIED_DIR,
    ENDED_DIR,
    OPEN_ATTEMPTS,
    Steps,
    _open,
    _parse_time,
)

NOT_A_TIME = "String was not recognized as a valid DateTime."
"""What ``[DateTime]::Parse`` throws for a -Since that is no time."""
_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def plan_records_steps(
    files: LockFiles, now: datetime, args: dict[str, Any], *, attempts: int = OPEN_ATTEMPTS
) -> Steps:
    """Get-CasdesiredPlanRecord: the plans applied here since ``Since``, with their lock's end."""
    since = str(args.get("Since") or "")
    try:
        start = _parse_time(since) if since else None
    except ValueError:
        raise err.ExchangeError(NOT_A_TIME, target=since, category="FormatException") from None
    handle = yield from _open(files, create=False, attempts=attempts)
    if handle is None:
        return []
    try:
        yield "read-records"
        found: list[Obj] = []
        for path, text in sorted(files.files.items()):
            if not path.startswith(APPLIED_DIR):
                continue
            record: dict[str, Any] = json.loads(text)
            applied = str(record["applied"])
            if start is not None and _parse_time(applied) < start:
                continue
            lock_id = str(record.get("lock_id") or "")
            ended = files.files.get(f"{ENDED_DIR}{lock_id}.json") if _ID.match(lock_id) else None
            found.append(
                {
                    "PlanId": str(record["plan_id"]),
                    "Owner": str(record["owner"]),
                    "LockId": lock_id or None,
                    "Applied": applied,
                    "Ended": str(json.loads(ended)["ended"]) if ended is not None else None,
                }
            )
        yield "close"
    finally:
        files.close(handle)
    return found

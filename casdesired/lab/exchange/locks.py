"""The agent's lock functions, as the lab runs them (mirror of the lock section of agent.ps1).

On Windows the organisation-wide lock is a file the agent creates atomically under
``%ProgramData%\\casdesired\\locks\\`` (``[IO.File]::Open(path, 'CreateNew')``), and every plan
that started writing leaves a record under ``%ProgramData%\\casdesired\\applied\\``. The lab keeps
those files in its state document (``OrgState.files``: Windows path → file text), so the lock
survives lab restarts exactly as the file survives on the endpoint host.

The functions are defined by the agent script itself, so they exist whatever the Exchange
session mode; their parameters are bound as strictly as any cmdlet's (an unknown parameter
fails). Texts are the same strings agent.ps1 throws.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.cmdlets import Cmdlet, CmdletContext, Obj, Param

LOCK_PATH = "C:\\ProgramData\\casdesired\\locks\\organisation.lock"
APPLIED_DIR = "C:\\ProgramData\\casdesired\\applied\\"
_SAFE_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")

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
BAD_ID = "casdesired: '{value}' is not a valid {what} (letters, digits and '-', at most 64)."


def _thrown(message: str) -> err.ExchangeError:
    """What ``throw "text"`` makes in PowerShell (as the agent executor reports it)."""
    return err.ExchangeError(message, target=message, category="RuntimeException")


def _iso(moment: datetime) -> str:
    """``[DateTime]::UtcNow.ToString('o')``: seven fractional digits and Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _parse(text: str) -> datetime:
    return datetime.strptime(text[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)


def _check_id(value: str, what: str) -> str:
    # The plan id becomes part of a file name: anything but a plain id could leave the folder.
    if not _SAFE_ID.match(value):
        raise _thrown(BAD_ID.format(value=value, what=what))
    return value


def _now(ctx: CmdletContext) -> datetime:
    return datetime.fromtimestamp(ctx.now, timezone.utc)


def _current(ctx: CmdletContext) -> dict[str, Any] | None:
    text = ctx.state.files.get(LOCK_PATH)
    return None if text is None else dict(json.loads(text))


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
        "Expires": lock["expires"],
        "Path": LOCK_PATH,
        "TakenOverFrom": taken_over_from,
    }


def _write(ctx: CmdletContext, path: str, data: dict[str, Any]) -> None:
    ctx.state.files[path] = json.dumps(data, separators=(",", ":"))
    ctx.changed = True


def _applied_record(ctx: CmdletContext, plan_id: str) -> dict[str, Any] | None:
    text = ctx.state.files.get(f"{APPLIED_DIR}{plan_id}.json")
    return None if text is None else dict(json.loads(text))


def _refuse_applied(ctx: CmdletContext, plan_id: str) -> None:
    record = _applied_record(ctx, plan_id)
    if record is not None:
        raise _thrown(
            ALREADY_APPLIED.format(
                plan_id=plan_id, applied=record["applied"], owner=record["owner"]
            )
        )


def enter_lock(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    lock_id = _check_id(args["LockId"], "lock id")
    plan_id = _check_id(args["PlanId"], "plan id") if args.get("PlanId") else ""
    if plan_id:
        _refuse_applied(ctx, plan_id)
    now = _now(ctx)
    current = _current(ctx)
    taken_over_from: str | None = None
    if current is not None and current["lock_id"] != lock_id:
        if _parse(current["expires"]) > now:
            raise _thrown(LOCK_HELD.format(**{"plan_id": current.get("plan_id") or "-", **current}))
        # The lease ran out (a killed job): the file is removed and created anew.
        taken_over_from = f"{current['owner']} (lock {current['lock_id']})"
    lock = {
        "lock_id": lock_id,
        "owner": args["Owner"],
        "plan_id": plan_id,
        "acquired": _iso(now),
        "expires": _iso(now + timedelta(seconds=args["LeaseSeconds"])),
    }
    _write(ctx, LOCK_PATH, lock)
    return [_lock_object(lock, taken_over_from)]


def _held(ctx: CmdletContext, lock_id: str) -> dict[str, Any]:
    current = _current(ctx)
    if current is None or current["lock_id"] != lock_id:
        raise _thrown(NOT_HELD.format(lock_id=lock_id, current=_describe(current)))
    return current


def update_lock(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    lock = _held(ctx, _check_id(args["LockId"], "lock id"))
    lock["expires"] = _iso(_now(ctx) + timedelta(seconds=args["LeaseSeconds"]))
    _write(ctx, LOCK_PATH, lock)
    return [_lock_object(lock)]


def exit_lock(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    lock_id = _check_id(args["LockId"], "lock id")
    current = _current(ctx)
    if current is None:
        return []  # nothing to release (already broken with unlock)
    _held(ctx, lock_id)
    del ctx.state.files[LOCK_PATH]
    ctx.changed = True
    return []


def remove_lock(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    lock = _held(ctx, _check_id(args["LockId"], "lock id"))
    del ctx.state.files[LOCK_PATH]
    ctx.changed = True
    return [_lock_object(lock)]


def get_lock(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    current = _current(ctx)
    return [] if current is None else [_lock_object(current)]


def register_plan(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    lock = _held(ctx, _check_id(args["LockId"], "lock id"))
    plan_id = _check_id(args["PlanId"], "plan id")
    _refuse_applied(ctx, plan_id)
    record = {"plan_id": plan_id, "owner": lock["owner"], "applied": _iso(_now(ctx))}
    _write(ctx, f"{APPLIED_DIR}{plan_id}.json", record)
    return [{"PlanId": plan_id, "Applied": record["applied"]}]


_LOCK_ID = Param("LockId", mandatory=True)
FUNCTIONS: dict[str, Cmdlet] = {
    f.name.lower(): f
    for f in (
        Cmdlet(
            "Enter-CasdesiredLock",
            "agent",
            (_LOCK_ID, Param("Owner", mandatory=True),
             Param("LeaseSeconds", "uint", mandatory=True), Param("PlanId")),
            enter_lock,
        ),
        Cmdlet("Update-CasdesiredLock", "agent",
               (_LOCK_ID, Param("LeaseSeconds", "uint", mandatory=True)), update_lock),
        Cmdlet("Exit-CasdesiredLock", "agent", (_LOCK_ID,), exit_lock),
        Cmdlet("Remove-CasdesiredLock", "agent", (_LOCK_ID,), remove_lock),
        Cmdlet("Get-CasdesiredLock", "agent", (), get_lock),
        Cmdlet("Register-CasdesiredPlan", "agent",
               (_LOCK_ID, Param("PlanId", mandatory=True)), register_plan),
    )
}


def lookup(name: str) -> Cmdlet | None:
    """The agent-defined function ``name``, if it is one (they need no snap-in or module)."""
    return FUNCTIONS.get(name.strip().lower())

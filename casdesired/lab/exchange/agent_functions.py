"""The functions agent.ps1 defines itself, as the lab registers them: the organisation lock
(:mod:`.locks`) and the plan records (:mod:`.planrecords`).

They exist whatever the Exchange session mode (no snap-in or module provides them) and bind
their parameters as strictly as any cmdlet. Each runs its step function (a generator over the
endpoint's files, :mod:`.lockfiles`) to its end inside one call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from casdesired.lab.exchange.binding import Cmdlet, CmdletContext, Handler, Obj, Param
from casdesired.lab.exchange.lockfiles import LockFiles
from casdesired.lab.exchange.locks import (
    Steps,
    enter_steps,
    exit_steps,
    get_steps,
    register_steps,
    remove_steps,
    run_steps,
    update_steps,
)
from casdesired.lab.exchange.planrecords import plan_records_steps

StepFunction = Callable[[LockFiles, datetime, dict[str, Any]], Steps]


def _handler(steps_of: StepFunction) -> Handler:
    """A cmdlet handler running ``steps_of`` on the lab state's files at the call's time."""

    def handle(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
        files = LockFiles(ctx.state.files, writable=ctx.state.settings.lock_directory_writable)
        before = dict(files.files)
        try:
            return run_steps(steps_of(files, datetime.fromtimestamp(ctx.now, timezone.utc), args))
        finally:
            if files.files != before:
                ctx.changed = True

    return handle


_LOCK_ID = Param("LockId", mandatory=True)
FUNCTIONS: dict[str, Cmdlet] = {
    f.name.lower(): f
    for f in (
        Cmdlet(
            "Enter-CasdesiredLock",
            "agent",
            (_LOCK_ID, Param("Owner", mandatory=True),
             Param("LeaseSeconds", "uint", mandatory=True), Param("PlanId")),
            _handler(enter_steps),
        ),
        Cmdlet("Update-CasdesiredLock", "agent",
               (_LOCK_ID, Param("LeaseSeconds", "uint", mandatory=True)),
               _handler(update_steps)),
        Cmdlet("Exit-CasdesiredLock", "agent", (_LOCK_ID,), _handler(exit_steps)),
        Cmdlet("Remove-CasdesiredLock", "agent", (_LOCK_ID,), _handler(remove_steps)),
        Cmdlet("Get-CasdesiredLock", "agent", (), _handler(get_steps)),
        Cmdlet("Register-CasdesiredPlan", "agent",
               (_LOCK_ID, Param("PlanId", mandatory=True)), _handler(register_steps)),
        Cmdlet("Get-CasdesiredPlanRecord", "agent", (Param("Since"),),
               _handler(plan_records_steps)),
    )
}


def lookup(name: str) -> Cmdlet | None:
    """The agent-defined function ``name``, if it is one (they need no snap-in or module)."""
    return FUNCTIONS.get(name.strip().lower())

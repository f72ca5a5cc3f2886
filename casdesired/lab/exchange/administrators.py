"""Other administrators, changing the organisation out of band (not through casdesired).

An administrator at the server's own Exchange Management Shell runs one Exchange cmdlet: it is
journaled and audited like any other, under their account and at the time given. Tests (and
the control API's ``POST /lab/cmdlet``) make drift this way, with a name on it: ``run_as(org,
"CONTOSO\\alice", "Set-MailboxDatabase", {...})``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from casdesired.lab.exchange import agent_functions
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.binding import LabValue, Session
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.exchange.runner import CmdletOutput


def run_as(
    organisation: Organisation,
    caller: str,
    cmdlet: str,
    parameters: Mapping[str, LabValue],
    *,
    run_date: datetime | None = None,
) -> CmdletOutput:
    """``caller`` (``CONTOSO\\alice``) runs ``cmdlet`` in their own console, at ``run_date``
    (UTC, now by default; backdated to play history, never in the future). Raises the cmdlet's
    ExchangeError as the shell would show it; ValueError for a bad ``run_date``."""
    if run_date is not None:
        if run_date.tzinfo is None:
            raise ValueError("run_date must be a UTC time")
        if run_date.timestamp() > organisation.clock.time() + 60:
            raise ValueError("run_date is in the future")
    if agent_functions.lookup(cmdlet) is not None:
        raise err.CommandNotFound(cmdlet)  # casdesired's own functions live in its agent
    # Their own console on the server: the snap-in loaded, AD reachable, no RBAC filtering.
    console = Session(organisation.hostname, delegates=True)
    return organisation.invoke(
        cmdlet, parameters, frozenset({"exchange"}), console, caller=caller, run_date=run_date
    )


def run_as_request(organisation: Organisation, body: Any) -> dict[str, Any]:
    """``POST /lab/cmdlet``: ``{"caller", "cmdlet", "parameters", "run_date"?}`` (run_date ISO
    8601 with its offset, e.g. ``2024-05-01T08:00:00Z``). Answers ``{"ok": true, "objects",
    "host_lines"}``, or ``{"ok": false, "error": {"message", "category"}}`` when the cmdlet
    failed (the call itself worked); a malformed body is a ValueError (400)."""
    if not isinstance(body, dict):
        raise ValueError("POST /lab/cmdlet needs a JSON object {caller, cmdlet, parameters}")
    caller, cmdlet = body.get("caller"), body.get("cmdlet")
    parameters = body.get("parameters") or {}
    if not isinstance(caller, str) or not caller.strip():
        raise ValueError("caller must name the administrator, e.g. CONTOSO\\alice")
    if not isinstance(cmdlet, str) or not isinstance(parameters, dict):
        raise ValueError("cmdlet must be a name and parameters an object")
    when = body.get("run_date")
    run_date = datetime.fromisoformat(str(when).replace("Z", "+00:00")) if when else None
    try:
        output = run_as(organisation, caller, cmdlet, parameters, run_date=run_date)
        objects = list(output.objects)
    except err.ExchangeError as exc:
        return {"ok": False, "error": {"message": exc.message, "category": exc.category}}
    return {"ok": True, "objects": objects, "host_lines": output.host_lines}

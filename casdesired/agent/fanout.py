"""Fan-out: one invocation run once per object of an earlier invocation's result.

An invocation with a ``for_each`` (:class:`ForEach`) runs once for each object the earlier
invocation it names returned in the same request, on the computer one of that object's
properties names — e.g. ``Get-NlbCluster`` on the ``Fqdn`` of every object
``Get-ClientAccessServer`` returned. It lets one request read where it only learns while it
runs (import reads Windows NLB on every Client Access server in its one execution).
Only data travels: the names of an invocation and of properties, and values to compare.

Semantics (agent.ps1's Get-AgentRuns and the lab's :mod:`casdesired.lab.exchange.agent_fanout`
implement them identically):

* the objects are those of the earlier invocation's result, as returned (only its
  ``properties``); ``computer`` and ``where`` name two of those properties, compared
  case-insensitively as PowerShell compares property names;
* ``where``/``values``: only objects whose property, as text (what ``group_by`` counts under:
  ``True`` for a boolean, ``''`` when absent or null), is one of the values
  (case-insensitively, as ``-contains`` compares);
* one run per distinct computer (compared case-insensitively; the first spelling kept), in the
  order of the objects; a fan-out over no object has no result at all;
* each run is the invocation with that ``computer`` — so it runs through the same PSSession a
  ``computer`` invocation uses, opened once per computer with the request's credential and
  removed when the run ends — and its own result id, :func:`run_id`: ``<id>@<computer>``, the
  computer as the object holds it (``read:nlb@hq-cas01.contoso.local``);
* ``on_error`` applies to each run: with ``stop`` nothing after a failed run runs, with
  ``continue`` the next run does; the keepalive and the fence are checked before each run as
  before each invocation;
* the invocation is not run at all — ONE failed result under its own id, then ``on_error`` —
  when the earlier invocation failed (:data:`SOURCE_FAILED`: its objects may be partial) or an
  object it would run for has no computer (:data:`NO_COMPUTER`).

A ``for_each`` naming an invocation that is not an earlier one of the request (unknown, later,
itself, or any in a keepalive), one that fans out itself or counts groups (it returns no
objects), a property that invocation does not return, or an invocation that also names a
``computer``, is a bad request (:data:`REFUSED`): the agent runs nothing, and casdesired never
builds one (:func:`check`, called when a :class:`~casdesired.agent.protocol.Request` is made or
read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from casdesired.errors import ProtocolError

if TYPE_CHECKING:
    from casdesired.agent.protocol import Invocation
    from casdesired.agent.response import JsonValue, Response, Result

SEPARATOR = "@"

# The agent's texts, exactly as agent.ps1 writes them.
REFUSED = "casdesired: invocation '{id}' cannot run for each object of '{source}': {why}."
NOT_EARLIER = "it is not an earlier invocation of the request"
FANS_OUT = "it runs for each object of another invocation itself"
COUNTS = "it counts groups and returns no objects"
NOT_RETURNED = "it does not return the property '{property}'"
OWN_COMPUTER = "the invocation names a computer of its own"
SOURCE_FAILED = "casdesired: '{id}' was not run: '{source}', whose objects it runs for, failed."
NO_COMPUTER = "casdesired: '{id}' was not run: an object of '{source}' has no {property}."


@dataclass(frozen=True)
class ForEach:
    """Run the invocation once per object of an earlier invocation, on the computer a property
    of the object names (the module docstring)."""

    invocation: str
    """The id of an earlier invocation of the same request."""
    computer: str
    """The property of each of its objects that names the computer to run on (``Fqdn``)."""
    where: str | None = None
    """Only the objects whose property of this name is one of ``values`` (None: all)."""
    values: tuple[str, ...] = ()

    def to_json(self) -> dict[str, JsonValue]:
        data: dict[str, JsonValue] = {"invocation": self.invocation, "computer": self.computer}
        if self.where is not None:
            data["where"] = {"property": self.where, "values": list(self.values)}
        return data

    @classmethod
    def from_json(cls, data: JsonValue) -> ForEach:
        if not isinstance(data, Mapping):
            raise ProtocolError("for_each must be an object")
        where = data.get("where")
        if where is not None and not isinstance(where, Mapping):
            raise ProtocolError("for_each: where must be an object")
        values = where.get("values") if where else ()
        if not isinstance(values, (list, tuple)):
            raise ProtocolError("for_each: where.values must be a list")
        return cls(
            invocation=str(data.get("invocation") or ""),
            computer=str(data.get("computer") or ""),
            where=str(where.get("property") or "") if where else None,
            values=tuple(str(v) for v in values),
        )


def run_id(invocation_id: str, computer: str) -> str:
    """The result id of the run of a fanned-out invocation on ``computer``."""
    return f"{invocation_id}{SEPARATOR}{computer}"


def check(invocations: Iterable[Invocation], keepalive: Invocation | None = None) -> None:
    """Refuse a request whose fan-outs the agent would refuse (:data:`REFUSED`)."""
    earlier: dict[str, Invocation] = {}
    for invocation in invocations:
        _check_one(invocation, earlier)
        earlier.setdefault(invocation.id, invocation)
    if keepalive is not None:
        _check_one(keepalive, {})  # a keepalive has no earlier invocation


def _check_one(invocation: Invocation, earlier: Mapping[str, Invocation]) -> None:
    fan = invocation.for_each
    if fan is None:
        return
    source = earlier.get(fan.invocation)
    why: str | None = None
    if source is None:
        why = NOT_EARLIER
    elif source.for_each is not None:
        why = FANS_OUT
    elif source.group_by is not None:
        why = COUNTS
    else:
        returned = {p.lower() for p in source.properties}
        for name in (fan.computer, *(() if fan.where is None else (fan.where,))):
            if name.lower() not in returned or not name:
                why = NOT_RETURNED.format(property=name)
                break
    if why is None and invocation.computer:
        why = OWN_COMPUTER
    if why is not None:
        raise ProtocolError(REFUSED.format(id=invocation.id, source=fan.invocation, why=why))


def results(response: Response, invocation_id: str) -> dict[str, Result]:
    """The runs' results of fanned-out invocation ``invocation_id``, by the computer each ran
    on (as the object held it)."""
    prefix = invocation_id + SEPARATOR
    return {r.id[len(prefix):]: r for r in response.results if r.id.startswith(prefix)}

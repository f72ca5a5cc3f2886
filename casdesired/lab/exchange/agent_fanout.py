"""The runs of one invocation, as agent.ps1's Get-AgentRuns makes them: itself, or one per
computer of a fan-out (:mod:`casdesired.agent.fanout` gives the rules).

A request naming a bad fan-out never gets here: :class:`~casdesired.agent.protocol.Request`
refuses it when the lab's agent decodes it, with agent.ps1's text (a ``fatal``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from casdesired.agent import fanout
from casdesired.agent.protocol import Invocation, Result
from casdesired.lab.exchange.agent_values import group_key


@dataclass(frozen=True)
class Run:
    invocation: Invocation
    """What to run: the invocation, or a copy of it for one computer of its fan-out."""
    refused: str = ""
    """Why it is not run at all ('' when it is): its result is this failure."""


def runs(invocation: Invocation, results: Iterable[Result]) -> list[Run]:
    """The runs of ``invocation``, given the results of the invocations before it."""
    fan = invocation.for_each
    if fan is None:
        return [Run(invocation)]
    source = next((r for r in results if r.id == fan.invocation), None)
    if source is None or not source.ok:
        return [Run(invocation, fanout.SOURCE_FAILED.format(id=invocation.id,
                                                            source=fan.invocation))]
    wanted = {v.lower() for v in fan.values}
    computers: dict[str, str] = {}
    for row in map(dict, source.objects):
        if fan.where is not None and group_key(row, fan.where).lower() not in wanted:
            continue
        computer = group_key(row, fan.computer)
        if computer == "":
            return [Run(invocation, fanout.NO_COMPUTER.format(
                id=invocation.id, source=fan.invocation, property=fan.computer))]
        computers.setdefault(computer.lower(), computer)  # the first spelling kept
    return [
        Run(replace(invocation, id=fanout.run_id(invocation.id, computer), computer=computer,
                    for_each=None))
        for computer in computers.values()
    ]

"""Deleting a shell, or signalling its command to terminate, kills the running agent.

On Windows the process dies where it is; the lab's agent stops at its next step: before the
next invocation, or before the next poll of an ``until``. What ran is in the journal, and
nothing after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import winrm

from casdesired.agent import protocol as agent_protocol
from casdesired.lab.exchange import Organisation
from casdesired.lab.faults import CmdletFault
from casdesired.lab.server import Lab

from .agent_wire import WAIT_SECONDS, process_end, start_agent, wait_for
from .conftest import protocol

GATE = "held"
READS = agent_protocol.Request(invocations=(
    agent_protocol.Invocation("cas", "Get-ClientAccessServer", properties=("Name",)),
    agent_protocol.Invocation("arrays", "Get-ClientAccessArray", properties=("Name",)),
    agent_protocol.Invocation("dbs", "Get-MailboxDatabase", properties=("Name",)),
))


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(Organisation.from_seed()) as running:
        yield running


def cmdlets(lab: Lab) -> list[str]:
    return [str(e["cmdlet"]) for e in lab.journal.entries(["cmdlet"])]


def kill_by_delete(proto: winrm.Protocol, shell: str, command: str) -> None:
    proto.close_shell(shell, close_session=False)


def kill_by_signal(proto: winrm.Protocol, shell: str, command: str) -> None:
    proto.cleanup_command(shell, command)  # Signal .../signal/terminate


KILLS: dict[str, Callable[[winrm.Protocol, str, str], None]] = {
    "Delete": kill_by_delete, "Signal terminate": kill_by_signal,
}


@pytest.mark.parametrize("how", sorted(KILLS))
def test_a_killed_agent_runs_no_further_invocation(lab: Lab, how: str) -> None:
    lab.faults.cmdlets.append(CmdletFault("Get-ClientAccessServer", fail=False, gate=GATE))
    gate = lab.faults.gate(GATE)
    proto = protocol(lab)
    shell, command = start_agent(proto, READS)  # it runs: its stdin is complete
    try:
        assert gate.wait_reached(WAIT_SECONDS), "the agent never reached the first invocation"
        KILLS[how](proto, shell, command)
    finally:
        gate.open()  # the invocation under way finishes; the lab cannot stop it half-way
    ended = process_end(lab, command)
    assert ended["outcome"] == "killed"
    ran = cmdlets(lab)
    assert ran[-1] == "Get-ClientAccessServer"
    assert "Get-ClientAccessArray" not in ran and "Get-MailboxDatabase" not in ran
    if how == "Signal terminate":
        proto.close_shell(shell, close_session=False)
    assert lab.open_shells == 0


def test_a_killed_agent_stops_polling_an_until(lab: Lab) -> None:
    lab.organisation.configure(nlb_drain_seconds=600)  # type: ignore[attr-defined]
    drain = agent_protocol.Request(
        invocations=(
            agent_protocol.Invocation("stop", "Stop-NlbClusterNode",
                                      {"HostName": "BR-CAS01", "Drain": True}),
            agent_protocol.Invocation(
                "wait", "Get-NlbClusterNode", {"HostName": "BR-CAS01"}, ("State",),
                until=agent_protocol.Until("State", ("Stopped",), timeout_seconds=300,
                                           interval_seconds=0.05),
            ),
            agent_protocol.Invocation("after", "Get-ClientAccessArray", properties=("Name",)),
        ),
        modules=("NetworkLoadBalancingClusters",),
        exchange=agent_protocol.ExchangeSession(mode="none"),
    )
    proto = protocol(lab)
    shell, command = start_agent(proto, drain)
    wait_for(lambda: True if cmdlets(lab).count("Get-NlbClusterNode") >= 2 else None,
             "the agent to poll the drain")
    proto.close_shell(shell, close_session=False)
    # Without the kill, the poll would go on for the until's 300 s: the process ending here
    # at all is the proof that it stopped.
    ended = process_end(lab, command)
    assert ended["outcome"] == "killed"
    assert "Get-ClientAccessArray" not in cmdlets(lab)

"""The agent's progress lines reach the client while the agent still runs, on the Receives the
client makes anyway (WinRM answers a Receive as soon as the process wrote something): through
the real client (pywinrm) against the lab over a socket, both deliveries.

The lab's clock holds the agent's first sleep between two polls until the client has shown
the poll's progress line: if the lab kept a running process's stdout until it ended, the line
could not arrive first and the clock would give up waiting (``streamed`` records which).
"""

from __future__ import annotations

import threading
import time

import pytest

from casdesired.agent.delivery import Delivery
from casdesired.agent.framing import AgentProgress
from casdesired.agent.protocol import Request
from casdesired.changes.types import NlbNodeAdd
from casdesired.changes.types.nlb import CONVERGENCE_POLL_SECONDS, CONVERGENCE_TIMEOUT_SECONDS
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.server import Lab, LabCredentials
from casdesired.transport.winrm import AgentClient, WinRMTarget

GIVE_UP_SECONDS = 10.0
"""Only a broken lab gets near this: the wait ends on the client's event."""


class HeldClock:
    """Time that moves only when the lab sleeps; a sleep between two polls (the cmdlets' own
    costs are far shorter) first waits until the client has shown the poll's line."""

    def __init__(self) -> None:
        self.shown = threading.Event()
        self.streamed: list[bool] = []
        self.wall = time.time()
        self.mono = 0.0

    def time(self) -> float:
        return self.wall + self.mono

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        if seconds >= CONVERGENCE_POLL_SECONDS:
            self.streamed.append(self.shown.wait(GIVE_UP_SECONDS))
            self.shown.clear()
        self.mono += seconds


ADD = NlbNodeAdd(site="HQ", cluster_host="hq-cas01.contoso.local", server="HQ-CAS02",
                 interface="NLB", server_fqdn="hq-cas02.contoso.local", node_interface="NLB")


@pytest.mark.parametrize("delivery", ["stdin", "file"])
def test_progress_lines_arrive_while_the_agent_runs(delivery: Delivery) -> None:
    clock = HeldClock()
    organisation = Organisation.from_seed(clock=clock)
    organisation.configure(nlb_convergence_seconds=3)
    with Lab(organisation, auth="ntlm", credentials=LabCredentials(password="Pr0gress!")) as lab:
        client = AgentClient(WinRMTarget(
            url=lab.url, transport="ntlm", username=lab.credentials.username,
            password="Pr0gress!", operation_timeout=5.0, read_timeout=15.0, delivery=delivery,
        ))
        seen: list[AgentProgress] = []

        def show(mark: AgentProgress) -> None:
            seen.append(mark)
            if mark.left is not None:
                clock.shown.set()

        request = client.make_request(tuple(ADD.invocations()), modules=ADD.modules)
        response = client.run(Request(**{**request.__dict__, "progress": True}), progress=show)
    assert all(r.ok for r in response.results), response.results
    assert clock.streamed and all(clock.streamed), clock.streamed
    # The add started (1), then the wait (2), polled while the cluster reconverged.
    assert seen[:2] == [AgentProgress(1), AgentProgress(2)]
    # Whole seconds left, rounded down (each poll's cmdlet costs a moment of the lab's clock).
    lefts = [m.left for m in seen[2:]]
    assert lefts == [int(CONVERGENCE_TIMEOUT_SECONDS) - 1 - n for n in range(len(lefts))]
    assert len(lefts) == len(clock.streamed) >= 2


def test_a_request_without_progress_writes_none() -> None:
    organisation = Organisation.from_seed()
    with Lab(organisation, auth="ntlm", credentials=LabCredentials(password="Pr0gress!")) as lab:
        client = AgentClient(WinRMTarget(
            url=lab.url, transport="ntlm", username=lab.credentials.username,
            password="Pr0gress!", operation_timeout=5.0, read_timeout=15.0,
        ))
        seen: list[AgentProgress] = []
        request = client.make_request(tuple(ADD.invocations()), modules=ADD.modules)
        response = client.run(request, progress=seen.append)
    assert all(r.ok for r in response.results) and seen == []

"""Run casdesired's agent in the lab through unmodified pywinrm, step by step.

The same operations the reconciler sends (a UTF-8 shell, the bootstrap command line, the agent
and its request on stdin), without the reconciler around them, so a test can act between them:
delete the shell while the agent runs, or read what the process left on its streams.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import winrm

from casdesired.agent import protocol as agent_protocol
from casdesired.agent.delivery import stdin as stdin_delivery
from casdesired.lab.exchange.testing import agent_script
from casdesired.lab.server import Lab

WAIT_SECONDS = 20.0
T = TypeVar("T")


def start_agent(
    proto: winrm.Protocol, request: agent_protocol.Request, lab: Lab | None = None
) -> tuple[str, str]:
    """(shell id, command id) of an agent run started with ``request``, its stdin complete.

    With ``lab``, a request that names no credential carries the lab account's, as the
    reconciler's requests do (the agent's second hops need it)."""
    if lab is not None and request.credential is None:
        account = lab.credentials
        request = replace(
            request, credential=agent_protocol.Credential(account.username, account.password)
        )
    shell = proto.open_shell(codepage=65001)
    executable, arguments = stdin_delivery.command_line()
    command = proto.run_command(shell, executable, arguments)
    stdin = stdin_delivery.encode_stdin(agent_script(), request)
    proto.send_command_input(shell, command, stdin, end=True)
    return shell, command


def process_end(lab: Lab, command: str) -> dict[str, object]:
    """The journal's ``process`` entry of ``command`` once its process has ended."""
    return wait_for(
        lambda: next((e for e in lab.journal.entries(["process"])
                      if e["command_id"] == command), None),
        f"the process of command {command} to end",
    )


def wait_for(found: Callable[[], T | None], what: str) -> T:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = found()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)

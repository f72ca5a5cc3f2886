"""Labs on loopback for the transport tests, driven by the real AgentClient (unmodified pywinrm)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from casdesired.agent import protocol
from casdesired.lab.process import ProcessResult
from casdesired.lab.server import Lab
from casdesired.transport.winrm import WinRMTarget


class ScriptedHost:
    """A PowerShell host whose every run answers what the test set (for wire-level cases where
    the agent's output itself is the subject: no frame, CLIXML errors, corrupt frames)."""

    hostname = "HQ-CAS01"

    def __init__(self, answer: Callable[[str, bytes], ProcessResult]) -> None:
        self.answer = answer
        self.runs: list[tuple[str, bytes]] = []

    def run(self, script: str, stdin: bytes) -> ProcessResult:
        self.runs.append((script, stdin))
        return self.answer(script, stdin)

    def snapshot(self) -> dict[str, Any]:
        return {}

    def load(self, data: dict[str, Any]) -> None:
        pass

    def reset(self) -> None:
        pass


def empty_response(_script: str, _stdin: bytes) -> ProcessResult:
    return ProcessResult(stdout=protocol.encode_response(protocol.Response(results=())) + "\r\n")


def target_of(lab: Lab, **changes: Any) -> WinRMTarget:
    """What casdesired would use for this lab; short timeouts keep failing tests fast."""
    target = WinRMTarget(
        url=lab.url,
        transport=lab.auth,
        username=lab.credentials.username,
        password=lab.credentials.password,
        ca_trust_path=str(lab.ca_file) if lab.ca_file else None,
        connect_timeout=3.0,
        operation_timeout=2.0,
        read_timeout=4.0,
    )
    return dataclasses.replace(target, **changes)


@pytest.fixture
def scripted_lab() -> Iterator[Callable[..., Lab]]:
    """Factory: ``scripted_lab(answer, **lab_options)`` → a started Lab, stopped afterwards."""
    started: list[Lab] = []

    def start(
        answer: Callable[[str, bytes], ProcessResult] = empty_response, **options: Any
    ) -> Lab:
        lab = Lab(ScriptedHost(answer), **options).start()
        started.append(lab)
        return lab

    yield start
    for lab in started:
        lab.stop()

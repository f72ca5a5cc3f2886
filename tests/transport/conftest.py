"""Labs on loopback for the transport tests, driven by the real AgentClient (unmodified pywinrm)."""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from casdesired.agent import framing, protocol
from casdesired.cli import main
from casdesired.lab.dns import LabDnsServer
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.process import ProcessResult
from casdesired.lab.server import Lab, LabCredentials
from casdesired.transport.winrm import WinRMTarget

SITES = Path(__file__).resolve().parents[2] / "sites"


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
    return ProcessResult(stdout=framing.encode_response(protocol.Response(results=())) + "\r\n")


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


@dataclasses.dataclass
class OrgDir:
    """The example organisation's files, pointed at a lab addressed like a Windows host."""

    path: Path
    lab: Lab


@pytest.fixture
def org_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., OrgDir]]:
    """Factory: ``org_dir(password=...)`` → the example's directory with ``endpoint`` set to a
    seed lab's URL (NTLM, that password), ``CASDESIRED_USERNAME``/``CASDESIRED_PASSWORD`` set
    to its account and the lab's DNS server as resolver; everything stops afterwards."""
    with ExitStack() as stack:

        def make(*, password: str, **lab_options: Any) -> OrgDir:
            organisation = Organisation.from_seed()
            lab = stack.enter_context(Lab(
                organisation, journal=organisation.journal, faults=organisation.faults,
                credentials=LabCredentials(password=password), **lab_options,
            ))
            dns = stack.enter_context(LabDnsServer(organisation))
            path = tmp_path / "org"
            shutil.copytree(SITES, path)
            yaml_path = path / "organisation.yaml"
            text = yaml_path.read_text().replace("endpoint: lab", f"endpoint: {lab.url}")
            yaml_path.write_text(re.sub(r"resolvers: \[lab\]", f"resolvers: [{dns.address}]", text))
            monkeypatch.setenv("CASDESIRED_USERNAME", lab.credentials.username)
            monkeypatch.setenv("CASDESIRED_PASSWORD", password)
            return OrgDir(path, lab)

        yield make


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the real CLI; (exit code, stdout, stderr)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err

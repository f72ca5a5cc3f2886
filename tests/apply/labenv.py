"""A lab on loopback addressed like a real Windows endpoint, and helpers to drive the CLI."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from casdesired.agent import protocol
from casdesired.agent.delivery import Delivery
from casdesired.apply import lock as locking
from casdesired.cli import main
from casdesired.lab.dns import LabDnsServer
from casdesired.lab.exchange.clock import LabClock
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.server import Lab, LabCredentials
from casdesired.transport.winrm import AgentClient, WinRMTarget

ROOT = Path(__file__).resolve().parents[2]
SITES = ROOT / "sites"
SECRET = "Apply-S3cr3t-pw!"


@dataclass
class Env:
    org_dir: Path
    lab: Lab
    organisation: Organisation
    tmp: Path
    env: dict[str, str]
    delivery: Delivery = "stdin"
    """``connection.agent.delivery`` of the organisation file (and of :meth:`client`)."""

    @property
    def audit(self) -> Path:
        return self.tmp / "audit.jsonl"

    def client(self) -> AgentClient:
        return AgentClient(
            WinRMTarget(
                url=self.lab.url,
                transport="ntlm",
                username=self.lab.credentials.username,
                password=SECRET,
                operation_timeout=5.0,
                read_timeout=15.0,
                delivery=self.delivery,
            )
        )

    def agent(self, invocation: protocol.Invocation) -> protocol.Result:
        """Run one lock function like another pipeline would (no Exchange loaded)."""
        request = protocol.Request(
            invocations=(invocation,), exchange=protocol.ExchangeSession(mode="none")
        )
        result = self.client().run(request).result(invocation.id)
        assert result is not None
        return result

    def current_lock(self) -> locking.LockInfo | None:
        result = self.agent(locking.get())
        return locking.LockInfo.from_object(result.objects[0]) if result.objects else None

    def cmdlets(self, since: int = 0) -> list[dict[str, object]]:
        return [e for e in self.lab.journal.entries(["cmdlet"]) if int(e["seq"]) > since]


def with_delivery(text: str, delivery: Delivery) -> str:
    """The organisation file's text with ``connection.agent.delivery`` set (stdin: as it is)."""
    if delivery == "stdin":
        return text
    return text.replace("  credentials:", f"  agent: {{delivery: {delivery}}}\n  credentials:", 1)


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Env]:
    """The lab and the example organisation; ``@pytest.mark.parametrize("env", ["file"],
    indirect=True)`` chooses the agent's delivery (stdin by default)."""
    delivery: Delivery = getattr(request, "param", "stdin")
    with lab_env(tmp_path, monkeypatch, delivery) as made:
        yield made


@contextmanager
def lab_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delivery: Delivery = "stdin",
    clock: LabClock | None = None,
) -> Iterator[Env]:
    """What :func:`env` yields, the organisation on ``clock`` (None: the real clocks)."""
    faults, journal = Faults(), Journal()
    organisation = Organisation.from_seed(faults=faults, journal=journal, clock=clock)
    creds = LabCredentials(password=SECRET)
    with (
        Lab(organisation, auth="ntlm", credentials=creds, faults=faults, journal=journal) as lab,
        LabDnsServer(organisation) as dns_server,
    ):
        org_dir = tmp_path / "org"
        shutil.copytree(SITES, org_dir)
        yaml_path = org_dir / "organisation.yaml"
        text = with_delivery(
            yaml_path.read_text().replace("endpoint: lab", f"endpoint: {lab.url}"), delivery
        )
        # A Windows-like endpoint has no embedded DNS server: name an ordinary resolver, the
        # lab organisation's DNS server on loopback (the DNS gate asks it before any write).
        yaml_path.write_text(
            re.sub(r"resolvers: \[lab\]", f"resolvers: [{dns_server.address}]", text)
        )
        values = {"CASDESIRED_USERNAME": creds.username, "CASDESIRED_PASSWORD": SECRET}
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        yield Env(org_dir, lab, organisation, tmp_path, values, delivery)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err

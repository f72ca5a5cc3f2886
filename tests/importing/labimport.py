"""A lab on loopback addressed like a Windows endpoint, and the CLI driven against it for import.

``casdesired import`` gets the connection as options (a WinRM URL, credentials as environment
variable NAMES, the lab organisation's DNS server as resolver), like an administrator adopting
casdesired; ``validate`` and ``plan`` then run on what it wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from casdesired.cli import main
from casdesired.lab.dns import LabDnsServer
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.server import Lab, LabCredentials

SECRET = "Import-S3cr3t-pw!"
V15 = "Version 15.0 (Build 1497.2)"


@dataclass
class ImportLab:
    lab: Lab
    organisation: Organisation
    dns: str
    tmp: Path

    def options(self, *, resolver: bool = True) -> list[str]:
        """The connection options of an organisation directory that does not exist yet."""
        out = [
            "--name", "contoso", "--endpoint", self.lab.url, "--transport", "ntlm",
            "--username-env", "CASDESIRED_USERNAME", "--password-env", "CASDESIRED_PASSWORD",
        ]
        return [*out, "--resolver", self.dns] if resolver else out

    def edit(self, change: Any) -> None:
        """Change the lab organisation's state document as another administrator would."""
        data = self.organisation.snapshot()
        change(data)
        self.organisation.load(json.loads(json.dumps(data)))

    def commands(self) -> int:
        return self.lab.journal.count("command")


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ImportLab]:
    faults, journal = Faults(), Journal()
    organisation = Organisation.from_seed(faults=faults, journal=journal)
    creds = LabCredentials(password=SECRET)
    with (
        Lab(organisation, auth="ntlm", credentials=creds, faults=faults, journal=journal) as server,
        LabDnsServer(organisation) as dns_server,
    ):
        monkeypatch.setenv("CASDESIRED_USERNAME", creds.username)
        monkeypatch.setenv("CASDESIRED_PASSWORD", SECRET)
        monkeypatch.chdir(tmp_path)
        yield ImportLab(server, organisation, dns_server.address, tmp_path)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def site_data(directory: Path) -> dict[str, dict[str, Any]]:
    """Each site file's YAML as plain data, by site name (read as casdesired reads it)."""
    found = {}
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text("utf-8"))
        if data.get("kind") == "site":
            found[data["site"]] = data
    return found


def round_trip(
    capsys: pytest.CaptureFixture[str], directory: Path, *, unmanaged: set[str] = frozenset()
) -> tuple[str, dict[str, Any]]:
    """validate (no error) and plan --detailed-exitcode (0: no changes) on ``directory``.

    The plan's unmanaged databases must be exactly ``unmanaged`` (what import said it left
    out): a database import declared must be bound, not merely left alone. Returns validate's
    output and the plan (JSON).
    """
    code, out, err = cli(capsys, "validate", str(directory))
    assert code == 0, out + err
    assert ": error:" not in out
    validated = out + err
    code, out, err = cli(capsys, "plan", str(directory), "--detailed-exitcode", "--format", "json")
    assert code == 0, out + err
    plan = json.loads(out)
    assert plan["changes"] == [] and plan["withheld"] == [], plan["changes"]
    assert not [f for f in plan["findings"] if f["blocking"]]
    left = {u["identity"] for u in plan["unmanaged"] if u["kind"] == "database"}
    assert left == set(unmanaged), left ^ set(unmanaged)
    return validated, plan

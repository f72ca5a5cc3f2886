"""Plan messages that must not mislead: through the real CLI against the embedded lab.

* no "matches the desired state" when blocking findings withheld everything;
* a declared server that exists without the Client Access role is called that;
* Markdown (for pull-request comments) shows YAML locations relative to the organisation
  directory, never the runner's absolute paths.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from casdesired.cli import main

SITES = Path(__file__).resolve().parents[2] / "sites"


def org_copy(tmp_path: Path) -> Path:
    org = tmp_path / "org"
    shutil.copytree(SITES, org)
    path = org / "organisation.yaml"
    text = path.read_text("utf-8")
    path.write_text(
        text.replace("connection:\n", f"connection:\n  lab: {{state: {tmp_path}/lab.json}}\n"),
        "utf-8",
    )
    return org


def add_server(org: Path, site_file: str, name: str) -> None:
    path = org / site_file
    text = path.read_text("utf-8")
    entry = f"servers:\n  - name: {name}\n    fqdn: {name.lower()}.contoso.local\n"
    path.write_text(text.replace("servers:\n", entry, 1), "utf-8")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_withheld_plan_says_no_changes_can_run_not_that_it_matches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = org_copy(tmp_path)
    add_server(org, "hq.yaml", "HQ-CAS09")  # unknown to Exchange: HQ is blocked
    code, out, _ = run(capsys, "plan", str(org), "--site", "HQ")
    assert code == 1
    assert "No changes can run: 4 withheld by 1 blocking finding(s)" in out
    assert "matches the desired state" not in out
    _, markdown, _ = run(capsys, "plan", "--format", "markdown", str(org), "--site", "HQ")
    assert "No changes can run: 4 withheld by 1 blocking finding(s)" in markdown
    assert "matches the desired state" not in markdown
    # In sync really is in sync.
    _, out, _ = run(capsys, "plan", str(org), "--site", "DR")
    assert "No changes. The live organisation matches the desired state." in out


def test_a_declared_server_without_the_client_access_role_is_called_that(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = org_copy(tmp_path)
    add_server(org, "dr.yaml", "DR-MBX01")  # a mailbox server of the lab
    code, out, _ = run(capsys, "plan", str(org), "--site", "DR")
    assert code == 1
    assert (
        "server DR-MBX01 is declared as a CAS server in site DR, but it does not have the "
        "Client Access role (Get-ExchangeServer shows ServerRole: Mailbox"
    ) in out
    assert "Exchange does not know it" not in out
    add_server(org, "dr.yaml", "DR-CAS09")  # nowhere in Exchange
    _, out, _ = run(capsys, "plan", str(org), "--site", "DR")
    assert "CAS server DR-CAS09 is declared in site DR but Exchange does not know it" in out


def test_markdown_locations_are_relative_to_the_organisation_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = org_copy(tmp_path)
    add_server(org, "hq.yaml", "HQ-CAS09")
    _, markdown, _ = run(capsys, "plan", "--format", "markdown", str(org))
    [row] = [line for line in markdown.splitlines() if "server-missing" in line]
    assert "| hq.yaml:" in row
    assert str(tmp_path) not in markdown

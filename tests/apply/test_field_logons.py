"""The example organisation plans and applies under the logons a real network gives (field §1).

A WinRM logon authenticated with NTLM, or with Kerberos without delegation, cannot reach a third
machine as the user. The lab models that logon (its wire speaks NTLM either way) and refuses
what Windows refuses: the Exchange snap-in's bind to a domain controller, and NLB's WMI to
another host. The example works anyway: Exchange through the supported /PowerShell session and
the NLB steps on the nodes themselves, both with the credentials passed inside the session.
Through the real CLI, real pywinrm and the loopback lab.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from apply.labenv import SECRET, SITES, cli
from casdesired.lab.dns import LabDnsServer
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.server import Lab, LabCredentials


@pytest.fixture(params=["ntlm", "kerberos"])
def logon_lab(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Lab]]:
    faults, journal = Faults(), Journal()
    organisation = Organisation.from_seed(faults=faults, journal=journal)
    creds = LabCredentials(password=SECRET)
    with (
        Lab(organisation, auth="ntlm", credentials=creds, faults=faults, journal=journal,
            logon=request.param) as lab,
        LabDnsServer(organisation) as dns_server,
    ):
        org_dir = tmp_path / "org"
        shutil.copytree(SITES, org_dir)
        path = org_dir / "organisation.yaml"
        text = path.read_text().replace("endpoint: lab", f"endpoint: {lab.url}")
        path.write_text(re.sub(r"resolvers: \[lab\]", f"resolvers: [{dns_server.address}]", text))
        monkeypatch.setenv("CASDESIRED_USERNAME", creds.username)
        monkeypatch.setenv("CASDESIRED_PASSWORD", SECRET)
        monkeypatch.chdir(tmp_path)
        yield org_dir, lab


def test_the_example_plans_and_applies_under_a_logon_that_cannot_delegate(
    logon_lab: tuple[Path, Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    org_dir, lab = logon_lab
    assert not lab.logon.delegates
    code, out, err = cli(capsys, "apply", str(org_dir), "--auto-approve", "--force",
                         "--audit-log", str(org_dir.parent / "audit.jsonl"))
    assert code == 0, out + err
    assert "Applied 8 of 8 change(s)." in out
    code, out, _ = cli(capsys, "plan", str(org_dir))
    assert code == 0 and "No changes." in out
    ran = lab.journal.entries(["cmdlet"])
    nlb = [e for e in ran if "Nlb" in str(e["cmdlet"])]
    # Field fact §1b: no NLB cmdlet aimed at another host; each ran on its node, and none was
    # refused as a second hop.
    assert nlb and all("HostName" not in e["parameters"] for e in nlb)
    assert all(e["ok"] for e in nlb)
    # Field fact §6: after the node joined, the cluster reconverged and casdesired waited for it.
    added = next(i for i, e in enumerate(ran) if e["cmdlet"] == "Add-NlbClusterNode")
    polls = [e for e in ran[added + 1:] if e["cmdlet"] == "Get-NlbClusterNode"]
    assert len(polls) >= 2  # Converging at first, then Converged
    # Field fact §3: every Exchange session saw the whole forest before counting mailboxes.
    scopes = [e for e in ran if e["cmdlet"] == "Set-AdServerSettings"]
    assert scopes and all(e["parameters"] == {"ViewEntireForest": True} for e in scopes)
    # Field fact §5: the agent removed every /PowerShell session it opened.
    assert lab.organisation.exchange_sessions() == 0  # type: ignore[attr-defined]


def test_the_snap_in_works_only_where_the_logon_can_delegate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The embedded lab models the logon the configured transport would give on Windows.
    org = tmp_path / "org"
    shutil.copytree(SITES, org)
    path = org / "organisation.yaml"
    lab_state = f"connection:\n  lab: {{state: {tmp_path}/l.json}}\n"
    text = path.read_text().replace("connection:\n", lab_state)
    snapin = text.replace("    mode: remote\n", "    mode: snapin\n")
    path.write_text(snapin)
    code, out, _ = cli(capsys, "validate", str(org))
    assert code == 1
    line = snapin.splitlines().index("    mode: snapin") + 1
    assert f"organisation.yaml:{line}:11: error: connection.exchange.mode 'snapin' needs " \
        "transport credssp" in out
    path.write_text(snapin.replace("transport: ntlm", "transport: credssp"))
    code, out, err = cli(capsys, "plan", str(org), "--site", "HQ")
    assert code == 0, err
    assert "add HQ-CAS02 to the NLB cluster on hq-cas01.contoso.local" in out

"""`casdesired plan` end to end: the real CLI against the lab over loopback (pywinrm, NTLM)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from casdesired.agent import framing
from casdesired.cli import main
from casdesired.desired.loader import load_desired
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.server import Lab, LabCredentials
from casdesired.plan.build import connect
from casdesired.plan.plan import Plan
from casdesired.plan.planfile import plan_schema

ROOT = Path(__file__).resolve().parents[2]
SITES = ROOT / "sites"
SECRET = "S3cr3t-MARKER-pw!$"


@pytest.fixture(autouse=True)
def lab_state_outside_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's embedded lab starts from the seed, in its own state directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("NO_COLOR", raising=False)


def plan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_seed_plan_shows_the_expected_changes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = plan(capsys, str(SITES))
    assert code == 0, err
    lines = [line.strip() for line in out.splitlines()]
    expected_in_order = [
        "+ create CAS array outlook-branch.contoso.local (name outlook-branch) in site Branch",
        "+ add HQ-CAS02 to the NLB cluster on hq-cas01.contoso.local",
        "~ update Autodiscover of HQ-CAS02: site scope (empty) -> HQ",
        "~ rebind database BR-DB01: br-cas01.contoso.local -> outlook-branch.contoso.local",
        "~ rebind database BR-DB02: br-cas01.contoso.local -> outlook-branch.contoso.local",
        "~ rebind database BR-DB03: br-cas01.contoso.local -> outlook-branch.contoso.local",
        "~ rebind database HQ-DB05: hq-cas02.contoso.local -> outlook-hq.contoso.local",
        "~ rebind database HQ-DB06: hq-cas02.contoso.local -> outlook-hq.contoso.local",
    ]
    found = [
        next(i for i, line in enumerate(lines) if line.startswith(e)) for e in expected_in_order
    ]
    assert found == sorted(found)
    changes = [line for line in lines if line[:2] in ("+ ", "~ ", "- ")]
    assert len(changes) == len(expected_in_order)
    assert re.search(
        r"^Plan: 2 to create, 6 to change, 0 to destroy; [\d,]+ mailboxes affected$", out, re.M
    )
    assert "\x1b[" not in out  # not a terminal: no colour
    assert err == ""  # no progress noise when stderr is not a terminal


def test_detailed_exitcode_json_markdown_and_out_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "plan.json"
    code, out, err = plan(
        capsys, str(SITES), "--format", "json", "--detailed-exitcode", "--out", str(saved)
    )
    assert code == 2, err
    document = json.loads(out)
    Draft202012Validator(plan_schema()).validate(document)
    assert document["organisation"] == {"name": "contoso", "endpoint": "lab"}
    loaded = Plan.load(saved)
    assert loaded.to_json() == document
    assert loaded.desired_digest == load_desired(SITES).digest()

    code, out, _ = plan(capsys, str(SITES), "--format", "markdown")
    assert code == 0
    assert "| # | Change | Mailboxes |" in out
    # The verdict, the per-site summary and the safety decisions come before any details.
    assert out.index("**Verdict: ") < out.index("| Site |") < out.index("#### Safety decisions")
    assert out.index("#### Safety decisions") < out.index("<details>")


def test_site_limits_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = plan(capsys, str(SITES), "--site", "branch", "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert {c["site"] for c in document["changes"]} == {"Branch"}
    assert document["sites"] == ["Branch"]
    code, _, err = plan(capsys, str(SITES), "--site", "Nowhere")
    assert code == 1 and "unknown site 'Nowhere'" in err and "Traceback" not in err


def test_applying_the_plans_invocations_converges_the_lab(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The invocations are ones the lab (like Exchange) accepts; afterwards nothing is left."""
    saved_plan = Plan.from_json(json.loads(plan(capsys, str(SITES), "--format", "json")[1]))
    desired = load_desired(SITES)
    invocations = tuple(i for c in saved_plan.changes for i in c.invocations())
    modules = tuple(sorted({m for c in saved_plan.changes for m in c.modules}))
    with connect(desired.organisation, {}) as client:
        response = client.run(client.make_request(invocations, modules=modules))
    failed = [(r.id, r.error) for r in response.results if not r.ok]
    assert failed == [] and len(response.results) == len(invocations)
    code, out, err = plan(capsys, str(SITES), "--detailed-exitcode")
    assert code == 0, out + err
    assert "No changes." in out


def test_invalid_desired_state_exits_1_without_a_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "org"
    shutil.copytree(SITES, broken)
    (broken / "hq.yaml").write_text(
        (broken / "hq.yaml").read_text().replace("site: HQ", "site: [HQ")
    )
    code, out, err = plan(capsys, str(broken), "--detailed-exitcode")
    assert code == 1 and out == ""
    assert "hq.yaml:" in err and "Traceback" not in err


@pytest.fixture
def windows_like(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Lab]]:
    """A lab on loopback addressed like a real Windows host: URL endpoint, env credentials."""
    faults, journal = Faults(), Journal()  # one of each for the wire and the Exchange side
    organisation = Organisation.from_seed(faults=faults, journal=journal)
    creds = LabCredentials(password=SECRET)
    with Lab(organisation, auth="ntlm", credentials=creds, faults=faults, journal=journal) as lab:
        org_dir = tmp_path / "org"
        shutil.copytree(SITES, org_dir)
        yaml_path = org_dir / "organisation.yaml"
        text = yaml_path.read_text().replace("endpoint: lab", f"endpoint: {lab.url}")
        # 'lab' as a resolver needs endpoint: lab; DNS is tested in tests/dns and tests/lab.
        yaml_path.write_text(text.replace("resolvers: [lab]", "resolvers: []"))
        monkeypatch.setenv("CASDESIRED_USERNAME", creds.username)
        monkeypatch.setenv("CASDESIRED_PASSWORD", SECRET)
        yield org_dir, lab


def test_no_secret_in_any_output_and_one_command_per_plan(
    windows_like: tuple[Path, Lab], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org_dir, lab = windows_like
    for fmt in ("text", "json", "markdown"):
        saved = tmp_path / f"plan-{fmt}.json"
        before = lab.journal.count("command")
        code, out, err = plan(capsys, str(org_dir), "--format", fmt, "--out", str(saved))
        assert code == 0, err
        # One to read; one to count the mailboxes of the 5 databases it rebinds.
        assert lab.journal.count("command") == before + 2
        assert "outlook-branch.contoso.local" in out
        for text in (out, err, saved.read_text()):
            assert SECRET not in text
            assert "S3cr3t" not in text


def test_a_plan_that_rebinds_nothing_reads_in_one_command_and_counts_no_mailbox(
    windows_like: tuple[Path, Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    org_dir, lab = windows_like
    before = lab.journal.count("command")
    code, _out, err = plan(capsys, str(org_dir), "--site", "DR")
    assert code == 0, err
    assert lab.journal.count("command") == before + 1
    assert not [e for e in lab.journal.entries(["cmdlet"]) if e["cmdlet"] == "Get-Mailbox"]


def test_rejected_or_missing_credentials_exit_1(
    windows_like: tuple[Path, Lab],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    org_dir, _ = windows_like
    monkeypatch.setenv("CASDESIRED_PASSWORD", "wrong-" + SECRET)
    code, out, err = plan(capsys, str(org_dir), "--detailed-exitcode")
    assert code == 1 and out == ""
    assert err.startswith("casdesired: error: ") and len(err.strip().splitlines()) >= 1
    assert SECRET not in err and "Traceback" not in err
    monkeypatch.delenv("CASDESIRED_PASSWORD")
    code, _, err = plan(capsys, str(org_dir))
    assert code == 1 and "CASDESIRED_PASSWORD" in err


def test_partial_read_is_an_error_not_an_empty_plan(
    windows_like: tuple[Path, Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    org_dir, lab = windows_like
    lab.faults.update({"cmdlets": [{"cmdlet": "Get-MailboxDatabase"}]})
    code, out, err = plan(capsys, str(org_dir), "--detailed-exitcode")
    assert code == 1 and out == ""
    assert err.startswith("casdesired: error: could not read") and "Traceback" not in err
    assert framing.RESPONSE_BEGIN not in err

"""A blocking finding blocks its own site: apply runs the other sites' changes (and exits 1).

Through the real CLI against the embedded lab (loopback only).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from changes.estates import live_estate, plan_of, seed_input

from casdesired.apply import safety
from casdesired.changes.diff import diff_input
from casdesired.cli import main
from casdesired.desired.config import Policy
from casdesired.findings import Finding, Severity
from casdesired.lab.exchange.organisation import Organisation
from casdesired.live.state import LiveState
from casdesired.plan.plan import Plan

SITES = Path(__file__).resolve().parents[2] / "sites"


def org_with_hq_blocked(tmp_path: Path) -> Path:
    """The example organisation, HQ declaring a CAS Exchange does not know (server-missing)."""
    org = tmp_path / "org"
    shutil.copytree(SITES, org)
    path = org / "organisation.yaml"
    text = path.read_text("utf-8")
    path.write_text(
        text.replace("connection:\n", f"connection:\n  lab: {{state: {tmp_path}/lab.json}}\n"),
        "utf-8",
    )
    hq = org / "hq.yaml"
    text = hq.read_text("utf-8")
    extra = "servers:\n  - name: HQ-CAS09\n    fqdn: hq-cas09.contoso.local\n"
    hq.write_text(text.replace("servers:\n", extra), "utf-8")
    return org


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def targets(tmp_path: Path) -> dict[str, str]:
    state = Organisation.from_file(tmp_path / "lab.json").snapshot()
    return {db["name"]: db["rpc_client_access_server"]["shown"] for db in state["databases"]}


def test_apply_runs_the_sites_a_finding_does_not_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = org_with_hq_blocked(tmp_path)
    code, out, err = run(capsys, "plan", str(org))
    assert code == 1 and "BLOCKING [server-missing]" in out
    assert "rebind database BR-DB01" in out.split("Withheld")[0]  # Branch's changes stay
    before = targets(tmp_path)
    code, out, err = run(
        capsys, "apply", str(org), "--auto-approve", "--audit-log", str(tmp_path / "audit.jsonl")
    )
    # Branch is applied, yet the apply fails: HQ's changes were not (tests/apply/test_withheld).
    assert code == 1, out + err
    assert "Withheld, not applied: 4 change(s) of 1 site(s) (HQ)" in out
    after = targets(tmp_path)
    assert {after[n] for n in ("BR-DB01", "BR-DB02", "BR-DB03")} == {
        "outlook-branch.contoso.local"
    }
    # HQ's changes were withheld: HQ-DB05/06 still point at the server.
    assert after["HQ-DB05"] == before["HQ-DB05"] == "hq-cas02.contoso.local"


def live_state() -> LiveState:
    estate, clusters = live_estate()
    return LiveState(estate=estate, nlb=clusters, host="lab")


def plan_with(finding: Finding) -> Plan:
    return plan_of(diff_input(seed_input()), extra_findings=(finding,))


def refusals(plan: Plan) -> list[str]:
    ctx = safety.SafetyContext(plan=plan, live=live_state(), policy=Policy(), force=True)
    return [r.message for r in safety.check_blocking_findings(ctx)]


def test_a_finding_without_a_site_or_on_a_site_with_changes_still_refuses() -> None:
    everywhere = Finding(Severity.ERROR, "org", "the organisation is broken", None)
    assert refusals(plan_with(everywhere)) == [
        "blocking finding: the organisation is broken (fix it, then make a new plan)"
    ]
    # A plan (damaged, hand-made) that still holds changes of a blocked site.
    on_branch = Finding(Severity.ERROR, "x", "Branch is broken", "branch")
    assert len(refusals(plan_with(on_branch))) == 1
    elsewhere = Finding(Severity.ERROR, "x", "DR is broken", "DR")
    assert refusals(plan_with(elsewhere)) == []
    assert refusals(plan_with(Finding(Severity.WARNING, "x", "just so you know", None))) == []

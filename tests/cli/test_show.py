"""`casdesired show PLANFILE`: the saved plan rendered offline, as `plan` rendered it.

The review comment is made from the artifact that will be applied: `show --format markdown` of
a plan file must be the comment `plan --format markdown --out FILE` wrote, and it must not need
the organisation (no connection, no credentials).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from casdesired.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example organisation (embedded lab) with a site file one folder down, asking to
    prune while the policy does not allow it: a warning located in a nested file."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    directory = tmp_path / "repo" / "orgs" / "contoso"
    shutil.copytree(ROOT / "sites", directory)
    (directory / "europe").mkdir()
    branch = (directory / "branch.yaml").read_text().replace("site: Branch\n",
                                                               "site: Branch\nprune: true\n")
    (directory / "europe" / "branch.yaml").write_text(branch)
    (directory / "branch.yaml").unlink()
    return directory


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt", ["markdown", "text", "json"])
def test_show_renders_the_saved_plan_as_plan_rendered_it(
    org: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    saved = tmp_path / "plan.json"
    code, planned, err = run(capsys, "plan", str(org), "--format", fmt, "--out", str(saved),
                             "--full-plan-link", "https://ci.example/artifacts/plan.json")
    assert code == 0, err
    code, shown, err = run(capsys, "show", str(saved), "--format", fmt,
                           "--full-plan-link", "https://ci.example/artifacts/plan.json")
    assert code == 0, err
    assert err == ""
    assert shown == planned
    if fmt == "markdown":
        assert "europe/branch.yaml:" in shown  # relative to the organisation, as plan shows it
        assert str(tmp_path) not in shown


def test_show_needs_no_organisation_and_no_credentials(
    org: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    saved = tmp_path / "plan.json"
    assert run(capsys, "plan", str(org), "--out", str(saved))[0] == 0
    shutil.rmtree(org)  # the directory, its endpoint and the lab state are all gone
    shutil.rmtree(tmp_path / "state")
    monkeypatch.delenv("CASDESIRED_USERNAME", raising=False)
    monkeypatch.delenv("CASDESIRED_PASSWORD", raising=False)
    code, out, err = run(capsys, "show", str(saved), "--format", "markdown", "--max-bytes", "900")
    assert code == 0, err
    assert out.startswith("### casdesired plan for contoso")
    assert "plan.json" in out  # a shortened comment says where the full plan is
    assert not (tmp_path / "state").exists()  # no lab was started
    document = json.loads(run(capsys, "show", str(saved), "--format", "json")[1])
    assert document["plan_id"] == json.loads(saved.read_text())["plan_id"]


def test_show_refuses_an_edited_or_foreign_file_in_one_line(
    org: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "plan.json"
    assert run(capsys, "plan", str(org), "--out", str(saved))[0] == 0
    saved.write_text(saved.read_text().replace('"HQ-DB05"', '"HQ-DB07"', 1))
    code, out, err = run(capsys, "show", str(saved))
    assert (code, out) == (1, "")
    assert err == (f"casdesired: error: {saved} was modified after it was saved (checksum "
                   "mismatch); make a new plan instead of editing one\n")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    code, out, err = run(capsys, "show", str(tmp_path / "other.json"))
    assert (code, out) == (1, "")
    assert "not a casdesired plan" in err and "Traceback" not in err
    code, _out, err = run(capsys, "show", str(tmp_path / "missing.json"))
    assert code == 1
    assert err.startswith(f"casdesired: error: cannot read plan file {tmp_path / 'missing.json'}")

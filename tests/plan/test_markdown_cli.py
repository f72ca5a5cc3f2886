"""`casdesired plan --format markdown` through the real CLI and the embedded lab: what DNS
checked, ``--max-bytes`` and where the full plan is (``--out``, ``--full-plan-link``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from casdesired.cli import main
from plan.gfm import tables

SITES = Path(__file__).resolve().parents[2] / "sites"


@pytest.fixture(autouse=True)
def lab_state_outside_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def summary(markdown: str) -> dict[str, str]:
    table = next(t for t in tables(markdown) if t.header[0] == "Site")
    return dict(zip(table.column("Site"), table.column("DNS checked"), strict=True))


def test_the_plan_records_which_sites_dns_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, str(SITES), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["dns_checked"] == ["Branch", "DR", "HQ"]
    _, out, _ = run(capsys, str(SITES), "--format", "json", "--site", "Branch")
    assert json.loads(out)["dns_checked"] == ["Branch"]
    _, markdown, _ = run(capsys, str(SITES), "--format", "markdown")
    assert summary(markdown) == {"Branch": "✓", "DR": "✓", "HQ": "✓"}  # DR: in sync, checked
    assert "Checked for 3 site(s)" in markdown and "no findings ✓." in markdown

    org = tmp_path / "org"
    shutil.copytree(SITES, org)
    path = org / "organisation.yaml"
    path.write_text(path.read_text().replace("resolvers: [lab]", "resolvers: []"))
    _, out, _ = run(capsys, str(org), "--format", "json")
    assert json.loads(out)["dns_checked"] == []
    _, markdown, _ = run(capsys, str(org), "--format", "markdown")
    assert summary(markdown) == {"Branch": "✗ not checked", "HQ": "✗ not checked"}
    assert "✗ Not checked: no resolvers are configured" in markdown


def test_max_bytes_shortens_the_comment_and_says_where_the_full_plan_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, full, _ = run(capsys, str(SITES), "--format", "markdown")
    assert len(full.encode()) > 2_000 and "shortened" not in full
    saved = tmp_path / "plan-123.json"
    code, out, err = run(capsys, str(SITES), "--format", "markdown", "--max-bytes", "2000",
                         "--out", str(saved))
    assert code == 0, err
    assert len(out.encode()) <= 2_000
    assert "details below are shortened. Full plan: plan-123.json._" in out
    assert str(tmp_path) not in out  # the file's name, not the runner's path
    assert json.loads(saved.read_text())["changes"]  # the full plan is there
    url = "https://ci.example/actions/runs/1/artifacts/2"
    _, out, _ = run(capsys, str(SITES), "--format", "markdown", "--max-bytes", "2000",
                    "--out", str(saved), "--full-plan-link", url)
    assert f"Full plan: <{url}>._" in out and f"Full plan (JSON): <{url}>." in out


@pytest.mark.parametrize("value", ["0", "-5", "many"])
def test_a_bad_max_bytes_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plan", str(SITES), "--format", "markdown", "--max-bytes", value])
    assert exc.value.code == 1  # a usage error; 2 is --detailed-exitcode's "changes present"
    err = capsys.readouterr().err
    assert f"argument --max-bytes: not a positive number of bytes: '{value}'" in err
    assert "Traceback" not in err

"""`casdesired validate`: output format, exit codes, --strict, --format json, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from casdesired.cli import main
from desired.helpers import FIXTURES, ORGANISATION, ROOT, org_dir


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_example_passes_with_its_warning(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = validate(capsys, "sites/")
    assert code == 0
    assert out.splitlines() == [
        "sites/branch.yaml:13:9: warning: array 'outlook-branch.contoso.local' has a single "
        "NLB member: no high availability"
    ]
    assert err == "0 errors, 1 warning in 4 files (contoso)\n"


def test_dir_defaults_to_sites(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(capsys)[0] == 0


def test_strict_makes_warnings_fail(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = validate(capsys, "--strict", "sites")
    assert code == 1
    assert "--strict: warnings fail" in err


def test_errors_exit_1_with_every_problem_printed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = validate(capsys, "tests/fixtures/desired/broken")
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 32
    assert "tests/fixtures/desired/broken/alpha.yaml:15:9: error: array FQDN" in out
    assert lines[0].startswith("tests/fixtures/desired/broken/alpha-again.yaml:4:7: warning: ")
    assert err.startswith("26 errors, 6 warnings in 8 files (fabrikam)")


def test_json_format_is_a_document_with_counts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = validate(capsys, "--format", "json", "tests/fixtures/desired/broken")
    assert code == 1
    document = json.loads(out)
    assert document["ok"] is False
    assert document["counts"] == {"errors": 26, "warnings": 6, "files": 8}
    first = document["diagnostics"][0]
    assert first == {
        "path": "tests/fixtures/desired/broken/alpha-again.yaml",
        "line": 4,
        "column": 7,
        "severity": "warning",
        "rule": "site-without-array",
        "message": first["message"],
    }


def test_json_format_ok_for_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = validate(capsys, "--format", "json", "sites")
    assert code == 0 and json.loads(out)["ok"] is True


def test_a_missing_directory_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = validate(capsys, "no/such/dir")
    assert (code, out) == (1, "")
    assert err == "casdesired: error: no/such/dir: no such directory\n"


def test_an_empty_directory_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = validate(capsys, str(tmp_path))
    assert code == 1 and "no YAML files" in err and err.count("\n") == 1


def test_a_secret_never_reaches_any_output(capsys: pytest.CaptureFixture[str]) -> None:
    for case in ("secret-inline", "secret-key", "secret-in-url"):
        for fmt in ("text", "json"):
            code, out, err = validate(
                capsys, "--format", fmt, f"tests/fixtures/desired/input/{case}"
            )
            assert code == 1
            assert "Sekr1t" not in out + err
            assert "not printed" in out


def test_no_bad_input_gives_a_traceback() -> None:
    cases = sorted(p for p in (FIXTURES / "input").iterdir() if p.is_dir())
    cases += [FIXTURES / "broken", ROOT / "no-such-dir", ROOT / "README.md"]
    script = (
        "import sys\nfrom casdesired.cli import main\n"
        "for d in sys.argv[1:]:\n    print('exit', main(['validate', d]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, cases)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.count("exit 1") == len(cases)


def test_the_console_script_runs_the_readme_command() -> None:
    script = Path(sys.executable).parent / "casdesired"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "casdesired"]
    result = subprocess.run(
        [*command, "validate", "sites/"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "0 errors" in result.stderr


def test_tls_validation_off_is_a_warning_not_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    org = ORGANISATION + "  tls: {validate: false}\n"
    code, out, _ = validate(capsys, str(org_dir(tmp_path, {"organisation.yaml": org})))
    assert code == 0 and "warning: TLS certificate validation is off" in out


def test_a_name_cannot_drive_the_terminal_or_print_a_fake_diagnostic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A database name with an ESC sequence and a newline that would start a line of its own.
    hostile = 'EVIL\\e[31mRED\\nsites/hq.yaml:1:1: error: fake'
    site = (ROOT / "sites" / "hq.yaml").read_text("utf-8") + (
        f'  server_bindings:\n    - {{database: "{hostile}", server: HQ-CAS02}}\n')
    org = org_dir(tmp_path, {"organisation.yaml": ORGANISATION, "hq.yaml": site})
    _, out, err = validate(capsys, str(org))
    assert "\x1b" not in out + err
    assert not any(line.startswith("sites/hq.yaml:1:1") for line in out.splitlines())
    shown = [line for line in out.splitlines() if "EVIL" in line]
    assert shown and all("EVIL\\x1b[31mRED\\nsites/hq.yaml:1:1: error: fake" in s for s in shown)
    # JSON keeps the value as it is (a machine reads it; json escapes it anyway).
    _, doc, _ = validate(capsys, str(org), "--format", "json")
    assert any("EVIL\x1b[31mRED\n" in d["message"] for d in json.loads(doc)["diagnostics"])


def test_an_error_message_cannot_drive_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["validate", str(tmp_path / "no\x1b[2Jsuch")])
    _, err = capsys.readouterr()
    assert code == 1
    assert "\x1b" not in err and "no\\x1b[2Jsuch" in err

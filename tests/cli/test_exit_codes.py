"""One exit-code table: docs/exit-codes.md, every command's --help, and usage errors exit 1.

argparse exits 2 on a usage error, which is what `plan --detailed-exitcode` answers for
"changes present": `plan --detailed-exitcode --formt markdown` looked like a plan with changes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from casdesired.cli import build_parser, main
from casdesired.cli.parser import commands

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "exit-codes.md"


def _words(text: str) -> str:
    return " ".join(text.replace("`", "").split())


def documented() -> dict[str, dict[int, str]]:
    """docs/exit-codes.md's table: command (after `casdesired`) → code → meaning."""
    table: dict[str, dict[int, str]] = {}
    row = re.compile(r"^\| `casdesired(?P<command>(?: [a-z]+)*)` \| (?P<code>\d+) \| (?P<m>.+) \|$")
    for line in DOCUMENT.read_text("utf-8").splitlines():
        match = row.match(line)
        if match:
            command = match["command"].strip() or "casdesired"
            table.setdefault(command, {})[int(match["code"])] = _words(match["m"])
    return table


def help_codes(capsys: pytest.CaptureFixture[str], command: str) -> dict[int, str]:
    """The `exit codes:` section of `casdesired COMMAND --help`: code → meaning."""
    argv = [] if command == "casdesired" else command.split()
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--help"])
    assert stopped.value.code == 0
    text = capsys.readouterr().out
    assert "\nexit codes:\n" in text, text
    codes: dict[int, str] = {}
    code = -1
    for line in text.split("\nexit codes:\n", 1)[1].splitlines():
        entry = re.match(r"^  (\d+) +(.*)$", line)
        if entry:
            code = int(entry[1])
            codes[code] = entry[2]
        elif line.startswith("       ") and code in codes:
            codes[code] += " " + line.strip()
        else:
            break
    return {c: _words(m) for c, m in codes.items()}


def test_the_document_lists_every_command() -> None:
    leaves = {
        name or "casdesired"
        for name, parser in commands(build_parser())
        if parser.get_default("func") is not None or not name
    }
    assert set(documented()) == leaves
    assert leaves >= {"casdesired", "validate", "plan", "apply", "unlock", "lab serve",
                      "lab reset"}


@pytest.mark.parametrize("command", sorted(documented()))
def test_each_help_states_the_documented_codes(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert help_codes(capsys, command) == documented()[command]


def test_usage_errors_are_1_and_2_is_only_changes_present() -> None:
    table = documented()
    assert all("usage error" in codes[1] for codes in table.values())
    # 2 means "something to look at" and nothing else: plan's changes, drift's drift.
    assert [c for c, codes in table.items() if 2 in codes] == ["plan", "drift"]
    assert "--detailed-exitcode" in table["plan"][2]
    assert table["drift"][2].startswith("drift:")


def exit_code(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as stopped:
        assert isinstance(stopped.code, int)
        code = stopped.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["plan", "--detailed-exitcode", "--formt", "markdown"],
            "casdesired plan: error: unrecognized arguments: --formt (did you mean --format?)",
        ),
        (["plan", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["validate", "--strikt"], "unrecognized arguments: --strikt (did you mean --strict?)"),
        (["apply", "--lock-timeout", "nan"], "'nan' is out of range: give 0 to 86400 seconds"),
        (["apply", "--lock-timeout", "-1"], "'-1' is out of range: give 0 to 86400 seconds"),
        (["apply", "--lock-timeout", "soon"], "'soon' is not a number"),
        (["unlock", "lock-1", "lock-2"], "unlock: error: unrecognized arguments: lock-2"),
        (["lab"], "casdesired lab: error: the following arguments are required: ACTION"),
        (["lab", "serve", "--port", "99999"], "'99999' is out of range: give 0 to 65535"),
        (["lab", "serve", "--latency-ms", "-5"], "'-5' is out of range: give 0 to 60000"),
        (["lab", "serve", "--port", "1e3"], "'1e3' is not a whole number"),
        (["deploy"], "argument COMMAND: invalid choice: 'deploy'"),
        (["drift", "--since", "yesterday"],
         "argument --since: 'yesterday' is not a date (2024-05-01), a UTC time"),
        (["drift", "--since", "2999-01-01"], "argument --since: '2999-01-01' is in the future"),
        (["drift", "--audit-results", "0"], "'0' is out of range: give 1 to 50000"),
    ],
)
def test_a_usage_error_exits_1_with_one_message(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = exit_code(capsys, argv)
    assert code == 1
    assert out == ""
    assert message in err
    assert err.startswith("usage: ")


def test_no_command_prints_help_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = exit_code(capsys, [])
    assert code == 1
    assert out == ""
    assert "exit codes:" in err and "validate" in err


def test_a_usage_error_is_1_from_the_installed_program_too() -> None:
    # The real process: argparse's own exit path, not only main()'s return value.
    result = subprocess.run(
        [sys.executable, "-m", "casdesired", "plan", "--detailed-exitcode", "--formt", "markdown"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )
    assert result.returncode == 1
    assert "unrecognized arguments: --formt" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["plan", "--help"]])
def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert exit_code(capsys, argv)[0] == 0

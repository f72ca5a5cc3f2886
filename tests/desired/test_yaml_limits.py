"""YAML that PyYAML cannot turn into values becomes one located error, never a traceback.

Before: 805 bytes of nested brackets raised RecursionError in validate, plan and apply;
``site: !!int HQ`` raised ValueError, ``!!bool`` KeyError, ``!!int ''`` IndexError; ``0x_`` (an
implicit int) ValueError; a 5,000-digit number ValueError (Python's digit limit).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from casdesired.cli import main
from casdesired.desired.loader import load_desired
from desired.helpers import EXAMPLE

MAX_DEPTH = 32  # levels of mappings and lists (docs/desired-state.md, "Reading files")
MAX_NUMBER_CHARACTERS = 64

COMMANDS = {
    "validate": ("validate",),
    "plan": ("plan",),
    "apply": ("apply", "--auto-approve"),
}


def example(tmp_path: Path, file: str, old: str, new: str) -> tuple[Path, Path]:
    """A copy of the example organisation with ``old`` replaced by ``new`` in ``file``."""
    directory = tmp_path / "org"
    shutil.copytree(EXAMPLE, directory)
    path = directory / file
    text = path.read_text("utf-8")
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), "utf-8")
    return directory, path


def run(capsys: pytest.CaptureFixture[str], command: str, directory: Path) -> tuple[int, str]:
    code = main([*COMMANDS[command], str(directory)])
    out, err = capsys.readouterr()
    return code, out + err


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if ": error: " in line]


DEEP = "nesting deeper than 32 levels of mappings and lists; casdesired files need only a few"


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("shape", "value", "column"),
    [
        # The root mapping is level 1, so the 32nd bracket is the 33rd level...
        ("flow list", "[" * 400 + "]" * 400, len("prune: ") + 32),
        # ... and the key of the 31st mapping is too.
        ("flow mapping", "{a: " * 400 + "}" * 400, len("prune: ") + 30 * len("{a: ") + 2),
        ("block list", "\n" + "".join("  " * i + "-\n" for i in range(400)) + "  " * 400 + "x", 0),
    ],
)
def test_deep_nesting_is_one_located_error(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: str,
    shape: str,
    value: str,
    column: int,
) -> None:
    directory, path = example(tmp_path, "hq.yaml", "prune: false", f"prune: {value}")
    code, output = run(capsys, command, directory)
    assert code == 1
    found = errors(output)
    assert len(found) == 1, found
    if column:
        assert found == [f"{path}:5:{column}: error: {DEEP}"]
    else:  # one line per level: the 33rd level is on line 5 + 32
        assert found == [f"{path}:{5 + MAX_DEPTH}:{2 * (MAX_DEPTH - 1) + 1}: error: {DEEP}"]


def test_nesting_up_to_the_limit_is_read(tmp_path: Path) -> None:
    # 31 lists under the root mapping: 32 levels, read; the schema then says prune is no list.
    value = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    directory, _ = example(tmp_path, "hq.yaml", "prune: false", f"prune: {value}")
    rules = [d.rule for d in load_desired(directory).diagnostics if d.severity.value == "error"]
    assert rules == ["wrong-type"]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("value", "needs"),
    [
        ("!!int HQ", "a whole number"),
        ("!!float HQ", "a number"),
        ("!!bool HQ", "true or false"),
        ("!!int '-'", "a whole number"),
        ("!!float '-'", "a number"),
        ("&anchor !!bool HQ", "true or false"),
    ],
)
def test_a_tag_that_does_not_fit_its_value_is_one_located_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, value: str, needs: str
) -> None:
    directory, path = example(tmp_path, "hq.yaml", "site: HQ", f"site: {value}")
    code, output = run(capsys, command, directory)
    assert code == 1
    tag = value.split()[-2]
    assert errors(output) == [
        f"{path}:4:7: error: the tag '{tag}' needs {needs}, and this value is not one; "
        "remove the tag or fix the value"
    ]


def test_a_tagged_secret_is_not_echoed(tmp_path: Path) -> None:
    directory, _ = example(
        tmp_path,
        "organisation.yaml",
        "password_env: CASDESIRED_PASSWORD",
        "password_env: !!int Sekr1t-pw",
    )
    diagnostics = load_desired(directory).diagnostics
    assert any(d.rule == "yaml-tag" for d in diagnostics)
    assert all("Sekr1t" not in str(d) for d in diagnostics)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0x_", "not a valid number: write a whole number, or quote it to mean text"),
        ("0b_", "not a valid number: write a whole number, or quote it to mean text"),
        (
            "1" * 5000,
            f"number 5000 characters long; numbers here have at most {MAX_NUMBER_CHARACTERS}",
        ),
        (
            # YAML 1.1 base 60: PyYAML's conversion is quadratic in the number of parts.
            "1" + ":59" * 100_000,
            f"number 300001 characters long; numbers here have at most {MAX_NUMBER_CHARACTERS}",
        ),
    ],
    ids=["hex", "binary", "5000-digits", "base-60"],
)
def test_a_number_yaml_cannot_convert_is_one_located_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, value: str, message: str
) -> None:
    directory, path = example(tmp_path, "hq.yaml", "vip: 10.1.0.50", f"vip: {value}")
    code, output = run(capsys, command, directory)
    assert code == 1
    assert errors(output) == [f"{path}:25:10: error: {message}"]

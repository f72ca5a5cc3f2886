"""Every number in the desired state is finite and within its documented bounds.

YAML has ``.nan``, ``.inf`` and ``-.inf``; NaN passes every ``minimum``/``maximum`` (all
comparisons with it are false), so before these checks ``max_rebind_percent: .nan`` validated
and silently switched the mass-rebind threshold off, and ``operation_seconds: .nan`` crashed
plan with a traceback. The numeric fields are found by walking the JSON Schemas, so a number
added to a schema without bounds, or without a case here, fails this file.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from casdesired.cli import main
from casdesired.desired import schema
from casdesired.desired.loader import load_desired
from desired.helpers import EXAMPLE, ROOT

# Every numeric field of the organisation file on a line of its own, at a valid value.
ORGANISATION = """\
# yaml-language-server: $schema=../schemas/organisation.schema.json
casdesired: 1
kind: organisation
name: contoso
connection:
  endpoint: lab
  transport: ntlm
  timeouts:
    connect_seconds: 10
    operation_seconds: 120
  agent:
    delivery: stdin
    start_timeout_seconds: 120
dns:
  resolvers: [lab]
  management:
    zone: contoso.local
    server: 127.0.0.1
    unsigned: true
    ttl: 300
policy:
  max_rebind_percent: 30
  min_databases_for_threshold: 10
"""

FIELDS = {
    "connection.agent.start_timeout_seconds": (1, 3600),
    "connection.timeouts.connect_seconds": (1, 300),
    "connection.timeouts.operation_seconds": (1, 3600),
    "dns.management.ttl": (1, 604800),
    "policy.max_rebind_percent": (0, 100),
    "policy.min_databases_for_threshold": (0, 100000),
}
"""Each numeric field and its bounds, as docs/desired-state.md states them."""


def _numeric_fields(node: Any, root: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """dotted path → subschema, for every property whose type is number or integer."""
    if "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[1]]
    found: dict[str, dict[str, Any]] = {}
    if node.get("type") in ("number", "integer"):
        found[where] = node
    for name, child in node.get("properties", {}).items():
        found.update(_numeric_fields(child, root, f"{where}.{name}" if where else name))
    items = node.get("items")
    if isinstance(items, dict):
        found.update(_numeric_fields(items, root, f"{where}[]"))
    return found


def numeric_fields(kind: str) -> dict[str, dict[str, Any]]:
    document = schema.schema(kind)
    return _numeric_fields(document, document, "")


def test_every_numeric_field_is_bounded_and_covered_here() -> None:
    assert numeric_fields("site") == {}
    found = numeric_fields("organisation")
    assert set(found) == set(FIELDS)
    for name, (low, high) in FIELDS.items():
        assert (found[name].get("minimum"), found[name].get("maximum")) == (low, high), name


def test_the_documented_bounds_are_the_schemas() -> None:
    text = (ROOT / "docs" / "desired-state.md").read_text("utf-8")
    for name, (low, high) in FIELDS.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"{low:,}–{high:,}" in row, row


def organisation(tmp_path: Path, field: str, value: str) -> tuple[Path, str]:
    """A copy of the example with ``field`` set to ``value``; and where that value sits."""
    directory = tmp_path / "org"
    shutil.copytree(EXAMPLE, directory)
    key = field.rsplit(".", 1)[1]
    pattern = re.compile(rf"^( *{key}: )\S+$", re.MULTILINE)
    text, count = pattern.subn(lambda m: m.group(1) + value, ORGANISATION)
    assert count == 1
    (directory / "organisation.yaml").write_text(text, "utf-8")
    match = pattern.search(text)
    assert match is not None
    line = text.count("\n", 0, match.start()) + 1
    return directory, f"{directory / 'organisation.yaml'}:{line}:{len(match.group(1)) + 1}"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def test_the_template_is_valid(tmp_path: Path) -> None:
    desired = load_desired(organisation(tmp_path, "policy.max_rebind_percent", "30")[0])
    assert not desired.has_errors(), desired.diagnostics


NOT_FINITE = {
    ".nan": ".nan (not-a-number)",
    ".NaN": ".nan (not-a-number)",
    ".inf": ".inf (infinity)",
    "-.Inf": "-.inf (infinity)",
    "+.inf": ".inf (infinity)",
}


@pytest.mark.parametrize("value", sorted(NOT_FINITE))
@pytest.mark.parametrize("field", sorted(FIELDS))
def test_not_finite_numbers_are_refused_at_their_place(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, field: str, value: str
) -> None:
    directory, where = organisation(tmp_path, field, value)
    code, output = run(capsys, "validate", str(directory))
    assert code == 1
    errors = [line for line in output.splitlines() if ": error: " in line]
    wanted = "a whole number" if field.endswith(("ttl", "threshold")) else "a number"
    assert errors == [f"{where}: error: {field} must be {wanted}, not {NOT_FINITE[value]}"]


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_values_outside_the_bounds_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, field: str
) -> None:
    low, high = FIELDS[field]
    for value, words in ((low - 1, f"at least {low}"), (high + 1, f"at most {high}")):
        directory, where = organisation(tmp_path / str(value), field, str(value))
        code, output = run(capsys, "validate", str(directory))
        assert code == 1
        assert f"{where}: error: {field} must be {words}\n" in output


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_the_bounds_themselves_are_accepted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, field: str
) -> None:
    for value in FIELDS[field]:
        directory, _ = organisation(tmp_path / str(value), field, str(value))
        code, output = run(capsys, "validate", str(directory))
        assert code == 0, output


@pytest.mark.parametrize(
    "argv", [("plan",), ("apply", "--auto-approve")], ids=["plan", "apply"]
)
@pytest.mark.parametrize("field", sorted(FIELDS))
def test_plan_and_apply_refuse_nan_before_connecting(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    field: str,
    argv: tuple[str, ...],
) -> None:
    directory, where = organisation(tmp_path, field, ".nan")
    code, output = run(capsys, *argv, str(directory))
    assert code == 1
    assert f"{where}: error: {field} must be" in output
    assert "the desired state has errors" in output


def test_a_whole_number_written_with_a_point_is_that_number(tmp_path: Path) -> None:
    directory, _ = organisation(tmp_path, "policy.min_databases_for_threshold", "12.0")
    desired = load_desired(directory)
    assert not desired.has_errors()
    assert desired.organisation.policy.min_databases_for_threshold == 12

"""Rules for dns: (lab resolver, RFC 2136 management keys) and for files casdesired refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from casdesired.desired.loader import load_desired
from casdesired.desired.yamlsource import MAX_FILE_BYTES
from desired.helpers import ORGANISATION, org_dir

WINDOWS = ORGANISATION.replace("endpoint: lab", "endpoint: https://ex.x.local:5986/wsman") + (
    "  credentials: {username_env: U, password_env: P}\n"
)


def _found(tmp_path: Path, organisation: str) -> list[tuple[int, int, str, str]]:
    desired = load_desired(org_dir(tmp_path, {"organisation.yaml": organisation}))
    return [
        (d.location.line, d.location.column, d.severity.value, d.rule)
        for d in desired.diagnostics
    ]


def test_the_lab_resolver_needs_the_lab_endpoint(tmp_path: Path) -> None:
    found = _found(tmp_path, WINDOWS + "dns:\n  resolvers: [lab]\n")
    assert found == [(10, 15, "error", "dns-lab-resolver")]


def test_the_lab_resolver_is_never_an_external_one(tmp_path: Path) -> None:
    found = _found(tmp_path, ORGANISATION + "dns:\n  external_resolvers: [lab]\n")
    assert found == [(9, 24, "error", "dns-lab-resolver")]


def test_signed_management_needs_its_key(tmp_path: Path) -> None:
    org = WINDOWS + "dns:\n  management: {zone: x.local, server: 127.0.0.1, key_name: k}\n"
    desired = load_desired(org_dir(tmp_path, {"organisation.yaml": org}))
    [problem] = [d for d in desired.diagnostics if d.rule == "dns-key-incomplete"]
    assert "secret_env" in problem.message and "key_name and" not in problem.message


def test_unsigned_management_ignores_a_key_with_a_warning(tmp_path: Path) -> None:
    org = WINDOWS + (
        "dns:\n  management: {zone: x.local, server: 127.0.0.1, unsigned: true, key_name: k}\n"
    )
    assert [r for *_, r in _found(tmp_path, org)] == ["dns-key-unused"]


def test_a_missing_required_key_names_it(tmp_path: Path) -> None:
    org = ORGANISATION.replace("name: tiny\n", "")
    desired = load_desired(org_dir(tmp_path, {"organisation.yaml": org}))
    [problem] = [d for d in desired.diagnostics if d.rule == "missing-key"]
    assert "name" in problem.message


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    huge = ORGANISATION + "#" + "x" * MAX_FILE_BYTES + "\n"
    desired = load_desired(org_dir(tmp_path, {"organisation.yaml": huge}))
    # Refused unread, so the directory has no organisation file either.
    assert sorted(d.rule for d in desired.diagnostics) == [
        "file-too-large",
        "organisation-missing",
    ]


@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf"])
def test_a_byte_order_mark_is_tolerated_or_named(tmp_path: Path, bom: bytes) -> None:
    (tmp_path / "organisation.yaml").write_bytes(bom + ORGANISATION.encode())
    desired = load_desired(tmp_path)
    assert not desired.has_errors(), [str(d) for d in desired.diagnostics]

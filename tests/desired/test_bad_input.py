"""Bad input of every kind becomes a located diagnostic (never a traceback, never a secret)."""

from __future__ import annotations

from pathlib import Path

import pytest

from casdesired.desired.loader import load_desired
from casdesired.errors import ConfigError
from desired.helpers import FIXTURES, ORGANISATION, org_dir

INPUT = FIXTURES / "input"


def located(case: str) -> list[tuple[str, str, str]]:
    """(path:line:col, rule, message) of every diagnostic for the fixture ``case``."""
    desired = load_desired(INPUT / case)
    return [(str(d.location), d.rule, d.message) for d in desired.diagnostics]


def find(case: str, rule: str) -> tuple[str, str]:
    hits = [(where, message) for where, r, message in located(case) if r == rule]
    assert len(hits) == 1, located(case)
    return hits[0]


PREFIX = "tests/fixtures/desired/input"


@pytest.mark.parametrize(
    ("case", "rule", "where", "words"),
    [
        (
            "duplicate-key",
            "yaml-duplicate-key",
            "hq.yaml:8:5",
            "duplicate key 'name' (first at line 6:5)",
        ),
        ("tabs", "yaml-tab", "hq.yaml:6:1", "tab used for indentation"),
        ("not-utf8", "encoding", "hq.yaml:4:8", "byte 0xE9 at offset 104 (line 4)"),
        ("malformed", "yaml", "hq.yaml:6:6", "invalid YAML: expected ',' or ']'"),
        ("alias-bomb", "yaml-alias", "hq.yaml:6:8", "aliases are not allowed (found '*a')"),
        ("not-casdesired", "not-casdesired", "docker-compose.yaml:1:1", "not a casdesired file"),
        ("empty-file", "not-casdesired", "organisation.yaml:1:1", "empty file"),
        ("only-comments", "not-casdesired", "hq.yaml:1:1", "no YAML content"),
        (
            "custom-tag",
            "yaml-tag",
            "hq.yaml:4:7",
            "python/object/apply:os.system' is not supported",
        ),
        (
            "wrong-version",
            "format-version",
            "hq.yaml:2:13",
            "this casdesired reads 'casdesired: 1'",
        ),
    ],
)
def test_bad_input_is_reported_at_its_place(case: str, rule: str, where: str, words: str) -> None:
    location, message = find(case, rule)
    assert location == f"{PREFIX}/{case}/{where}"
    assert words in message


def test_wrong_types_are_each_reported_at_the_value() -> None:
    found = {(where, rule) for where, rule, _ in located("wrong-types")}
    base = f"{PREFIX}/wrong-types/hq.yaml"
    assert {
        (f"{base}:5:8", "wrong-type"),  # prune: maybe
        (f"{base}:6:10", "wrong-type"),  # servers: HQ-CAS01
        (f"{base}:12:14", "wrong-type"),  # members: HQ-CAS01
    } <= found


def test_unknown_keys_suggest_the_key_meant() -> None:
    messages = {
        where: message for where, rule, message in located("unknown-key") if rule == "unknown-key"
    }
    base = f"{PREFIX}/unknown-key/hq.yaml"
    assert messages[f"{base}:7:5"] == "unknown key 'fdqn' in servers[0]; did you mean 'fqdn'?"
    assert messages[f"{base}:8:1"] == "unknown key 'arrays' in the top level; did you mean 'array'?"


@pytest.mark.parametrize(
    ("case", "secret"),
    [
        ("secret-inline", "Pa$$w0rd!Sekr1t"),
        ("secret-key", "Hunter2-Sekr1t"),
        ("secret-in-url", "Hunter2Sekr1t"),
    ],
)
def test_a_secret_written_inline_is_refused_without_echoing_it(case: str, secret: str) -> None:
    diagnostics = load_desired(INPUT / case).diagnostics
    assert any(
        d.rule in ("secret-inline", "unknown-key", "endpoint-has-credentials")
        and "not printed" in d.message
        for d in diagnostics
    )
    for diagnostic in diagnostics:
        assert secret not in str(diagnostic)
        assert "Sekr1t" not in str(diagnostic.to_dict())


def test_secret_inline_points_at_the_value(tmp_path: Path) -> None:
    where, message = find("secret-inline", "secret-inline")
    assert where == f"{PREFIX}/secret-inline/organisation.yaml:10:19"
    assert message.startswith("connection.credentials.password_env must be the NAME")


def test_credentials_in_the_endpoint_url_point_at_it() -> None:
    where, message = find("secret-in-url", "endpoint-has-credentials")
    assert where == f"{PREFIX}/secret-in-url/organisation.yaml:6:13"
    assert "connection.credentials" in message


def test_a_secret_in_a_malformed_line_is_not_quoted(tmp_path: Path) -> None:
    # PyYAML's own message would carry a snippet of the line: ours never does.
    org_dir(
        tmp_path,
        {"organisation.yaml": ORGANISATION + "  credentials: {password_env: Sekr1t!: x}\n"},
    )
    diagnostics = load_desired(tmp_path).diagnostics
    assert diagnostics and all("Sekr1t" not in str(d) for d in diagnostics)


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such directory"):
        load_desired(tmp_path / "absent")


def test_an_empty_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not yaml\n")
    with pytest.raises(ConfigError, match="no YAML files"):
        load_desired(tmp_path)


def test_a_file_instead_of_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "organisation.yaml").write_text(ORGANISATION)
    with pytest.raises(ConfigError, match="not a directory"):
        load_desired(tmp_path / "organisation.yaml")


def test_a_directory_without_organisation_file_says_so(tmp_path: Path) -> None:
    org_dir(tmp_path, {"hq.yaml": "casdesired: 1\nkind: site\nsite: HQ\n"})
    rules = [d.rule for d in load_desired(tmp_path).diagnostics]
    assert "organisation-missing" in rules


def test_two_organisation_files_are_refused(tmp_path: Path) -> None:
    org_dir(tmp_path, {"organisation.yaml": ORGANISATION, "sub/other.yaml": ORGANISATION})
    found = [d for d in load_desired(tmp_path).diagnostics if d.rule == "organisation-multiple"]
    assert len(found) == 1
    assert found[0].location.path.endswith("sub/other.yaml")
    assert (found[0].location.line, found[0].location.column) == (3, 7)


def test_an_unknown_kind_is_reported_at_the_kind(tmp_path: Path) -> None:
    org_dir(tmp_path, {"organisation.yaml": ORGANISATION, "x.yaml": "casdesired: 1\nkind: sight\n"})
    found = [d for d in load_desired(tmp_path).diagnostics if d.location.path.endswith("x.yaml")]
    assert [(d.location.line, d.location.column, d.rule) for d in found] == [(2, 7, "bad-value")]


def test_hidden_files_and_other_suffixes_are_ignored(tmp_path: Path) -> None:
    org_dir(
        tmp_path, {"organisation.yaml": ORGANISATION, ".git/config.yaml": "{", "README.md": "x"}
    )
    desired = load_desired(tmp_path)
    assert [p.name for p in desired.files] == ["organisation.yaml"]
    assert not desired.has_errors()

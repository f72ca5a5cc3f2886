"""Where import writes each site: a readable name, never a taken one, never hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from casdesired.importing.files import existing_files, file_stem, site_paths


@pytest.mark.parametrize(
    ("site", "stem"),
    [
        ("HQ", "hq"),
        ("Zürich #1", "zurich-1"),
        ("..hidden", "hidden"),  # the loader skips dot files: never one
        ("日本", "site"),
        ("CON", "site-con"),  # Windows refuses con.yaml
        ("nul.x", "site-nul.x"),
        ("Branch_Office.2", "branch_office.2"),
    ],
)
def test_a_site_gets_a_plain_file_name(site: str, stem: str) -> None:
    assert file_stem(site) == stem


def test_names_are_never_taken_twice_nor_from_another_file(tmp_path: Path) -> None:
    (tmp_path / "hq.yaml").write_text("casdesired: 1\nkind: site\nsite: Other\n")
    (tmp_path / "dr.yaml").write_text("casdesired: 1\nkind: site\nsite: DR\n")
    existing = existing_files(tmp_path)
    paths = site_paths(tmp_path, ["HQ", "hq!", "DR", "organisation", "Other"], existing)
    assert {k: p.name for k, p in paths.items()} == {
        "hq": "hq-2.yaml",  # hq.yaml declares site Other
        "hq!": "hq-3.yaml",
        "dr": "dr.yaml",  # its own file
        "organisation": "site-organisation.yaml",
        "other": "hq.yaml",
    }

"""docs/first-contact.md explains every check doctor makes, where each check's ``doc`` points."""

from __future__ import annotations

import re

from apply.labenv import ROOT

DOC = (ROOT / "docs" / "first-contact.md").read_text("utf-8")
SOURCES = "\n".join(p.read_text("utf-8") for p in (ROOT / "casdesired" / "doctor").glob("*.py"))
FAMILIES = "connection|host|winrm|exchange|nlb|lock|dns|ports|clock"


def test_every_check_id_and_anchor_has_its_section() -> None:
    ids = set(re.findall(rf'"((?:{FAMILIES})\.[a-z0-9-]+)"', SOURCES))
    anchors = set(re.findall(r'anchor="([a-z0-9-]+)"', SOURCES))
    sections = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', DOC))
    wanted = {i.replace(".", "-") for i in ids} | anchors
    assert len(ids) >= 34
    assert wanted <= sections, sorted(wanted - sections)
    assert sections <= wanted, sorted(sections - wanted)  # no section for a check that is gone
    for check_id in ids:
        assert f"`{check_id}`" in DOC, check_id


def test_the_path_starts_with_doctor_and_expects_no_changes() -> None:
    path = DOC.split("## The path", 1)[1].split("## ", 1)[0]
    steps = [path.index(s) for s in ("casdesired validate", "casdesired doctor",
                                     "casdesired import", "casdesired plan DIR", "No changes.",
                                     "casdesired apply")]
    assert steps == sorted(steps)


def test_the_readme_s_real_organisation_section_starts_with_doctor() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Against a real Exchange 2010 organisation", 1)[1]
    first = section.strip().split("\n\n", 1)[0]
    assert "casdesired doctor" in first and "docs/first-contact.md" in first

"""Paths and builders shared by the desired-state tests."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "desired"
EXAMPLE = ROOT / "sites"


def org_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    """A desired-state directory in ``tmp_path`` holding ``files`` (name → text)."""
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return tmp_path


ORGANISATION = """\
# yaml-language-server: $schema=organisation.schema.json
casdesired: 1
kind: organisation
name: tiny
connection:
  endpoint: lab
  transport: ntlm
"""

"""The round trip on organisations hypothesis draws: import → validate → plan, no change.

Each example loads a generated organisation (``importing.organisations``) into one lab reached
over WinRM, imports it through the real CLI (with or without ``--patterns``), validates the
result (no error) and plans it (``--detailed-exitcode`` 0, no change, nothing withheld), and the
plan leaves alone exactly the databases import said it could not declare. Without patterns,
the names in the files are the names Exchange has, byte for byte.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casdesired.importing.yamltext import scalar
from importing.labimport import ImportLab, cli, round_trip, site_data
from importing.organisations import Drawn, organisations


def test_drawn_organisations_import_to_an_empty_plan(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    base = lab.organisation.snapshot()
    ran: list[bool] = []

    @settings(
        derandomize=True,
        max_examples=100,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(drawn=organisations(base), patterns=st.booleans())
    def round_trips(drawn: Drawn, patterns: bool) -> None:
        ran.append(patterns)
        lab.organisation.load(drawn.state)
        with tempfile.TemporaryDirectory() as tmp:
            org = Path(tmp) / "org"
            extra = ["--patterns"] if patterns else []
            code, out, err = cli(capsys, "import", str(org), *lab.options(), *extra)
            assert code == 0, out + err
            round_trip(capsys, org, unmanaged=drawn.unmanaged)
            sites = site_data(org)
            assert len(sites) == len(drawn.state["sites"])
            written = [
                name
                for data in sites.values()
                for name in [
                    *data.get("databases", {}).get("names", []),
                    *(b["database"] for b in data.get("databases", {}).get("server_bindings", [])),
                ]
            ]
            assert len(written) == len(set(written))
            if not patterns:
                assert set(written) == drawn.declared  # as strings: byte for byte
            said = _comments(org)
            for name in drawn.unmanaged:  # said in a file (as YAML writes it), not dropped
                assert f"database {scalar(name)} " in said, name

    round_trips()
    # Every example went through the lab: import, then plan (validate reads only files).
    assert len(ran) >= 50 and any(ran) and not all(ran)
    assert lab.commands() >= 2 * len(ran)


def _comments(directory: Path) -> str:
    """Every comment of every file, wrapped lines joined again."""
    return " ".join(
        line.lstrip()[2:].strip()
        for path in directory.glob("*.yaml")
        for line in path.read_text("utf-8").splitlines()
        if line.lstrip().startswith("#")
    )

"""Fixtures for the desired-state tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from desired.helpers import ROOT


@pytest.fixture(autouse=True)
def _run_from_the_repository(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Diagnostics print paths relative to the working directory: make it the repository."""
    monkeypatch.chdir(ROOT)
    yield

"""Fixtures of the doctor tests: a Windows-like lab (tests/apply/labenv.py) and the real CLI."""

from __future__ import annotations

import pytest
from apply.labenv import Env, env

from doctor.helpers import Doctor

__all__ = ["doctor", "env"]


@pytest.fixture
def doctor(env: Env, capsys: pytest.CaptureFixture[str]) -> Doctor:
    return Doctor(env, capsys)

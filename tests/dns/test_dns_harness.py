"""The BIND harness itself: CI must never quietly skip the DNS tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _run_one_dns_test(env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(env_overrides, CASDESIRED_NAMED=str(HERE / "no-such-named"))
    target = f"{HERE / 'test_dns_checks.py'}::test_array_resolving_to_its_vip_gives_no_finding"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", target],
        cwd=HERE.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_missing_named_fails_loudly_under_ci() -> None:
    result = _run_one_dns_test({"CI": "true"})

    assert result.returncode != 0
    assert "BIND 9 (`named`) is not installed, but CI is set" in result.stdout


def test_missing_named_skips_with_a_reason_locally() -> None:
    result = _run_one_dns_test({})

    assert result.returncode == 0
    assert "1 skipped" in result.stdout
    assert "apt-get install bind9" in result.stdout

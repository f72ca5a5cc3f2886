"""The entry point itself: help, and no traceback when the reader of stdout goes away."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_command_prints_help_and_fails() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "casdesired"], capture_output=True, text=True, check=False
    )
    # 1, not argparse's 2: 2 is `plan --detailed-exitcode`'s "changes present".
    assert result.returncode == 1
    assert "validate" in result.stderr and "plan" in result.stderr


def test_closed_stdout_is_not_a_traceback() -> None:
    # `casdesired validate broken | head -0`: the reader is gone before the first write.
    proc = subprocess.Popen(
        [sys.executable, "-m", "casdesired", "validate", "tests/fixtures/desired/broken"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in stderr
    assert proc.returncode != 0

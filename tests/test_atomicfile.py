"""Files casdesired writes: whole or not at all, and a clear message when they cannot be."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from casdesired.atomicfile import write_atomic
from casdesired.cli import main
from casdesired.errors import FileWriteError


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    target.write_text("old")

    def explode(handle: object) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(FileWriteError, match=r"cannot write the plan to .*No space left"):
        write_atomic(target, explode, what="the plan")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_plan_out_to_a_missing_directory_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert main(["plan", "sites", "--out", str(tmp_path / "missing" / "p.json")]) == 1
    err = capsys.readouterr().err
    assert "cannot write the plan to" in err and "No such file or directory" in err
    assert "Traceback" not in err


def test_lab_serve_with_an_unwritable_state_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = subprocess.run(
        [sys.executable, "-m", "casdesired", "lab", "serve", "--state", str(blocker / "s.json")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert "cannot write the lab state to" in result.stderr
    assert "Traceback" not in result.stderr

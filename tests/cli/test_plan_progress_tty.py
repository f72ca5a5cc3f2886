"""Progress while reading: shown on a terminal's stderr, and never mixed into stdout."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_plan_shows_progress_on_a_terminal_and_keeps_stdout_clean(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path), "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "casdesired", "plan", "sites", "--format", "json"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env,
    )
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    stdout = proc.communicate(timeout=60)[0]
    os.close(master)
    assert proc.returncode == 0
    screen = seen.decode("utf-8", "replace")
    assert "reading the live organisation" in screen or "connecting to" in screen
    assert stdout.lstrip().startswith(b"{")  # the JSON is untouched by the spinner

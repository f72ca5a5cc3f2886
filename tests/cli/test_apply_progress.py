"""Apply's progress: batch n of m, the step running and its NLB wait counted down, on a
terminal's stderr only; nothing of it in a pipeline's log or on stdout."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path

from casdesired.apply.progress import Step, batch_step
from casdesired.changes.types import BindingChange, NlbNodeAdd
from casdesired.cli.progress import countdown, line

ROOT = Path(__file__).resolve().parents[2]


def _apply(tmp_path: Path, stderr: int) -> subprocess.Popen[bytes]:
    shutil.copytree(ROOT / "sites", tmp_path / "sites")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "TERM": "xterm",
           "CASDESIRED_MAX_BATCH": "1", "COLUMNS": "200"}
    env.pop("NO_COLOR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "casdesired", "apply", "sites", "--auto-approve", "--force",
         "--audit-log", str(tmp_path / "audit.jsonl")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, env=env,
    )


def test_apply_shows_batches_and_the_nlb_wait_on_a_terminal(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    proc = _apply(tmp_path, slave)
    os.close(slave)
    seen = b""
    try:
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
        stdout = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert proc.returncode == 0, seen.decode("utf-8", "replace")
    screen = seen.decode("utf-8", "replace")
    assert "taking the organisation lock and reading the live organisation" in screen
    assert "batch 1 of 8: create CAS array outlook-branch.contoso.local" in screen
    assert ("batch 2 of 8: add HQ-CAS02 to the NLB cluster on hq-cas01.contoso.local — waits "
            "up to 1:30 more") in screen
    assert "verifying the changes and releasing the lock" in screen
    assert "batch " not in stdout  # the report is untouched by the display
    assert "Applied 8 of 8 change(s)." in stdout


def test_apply_is_quiet_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    proc = _apply(tmp_path, subprocess.PIPE)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert b"batch" not in stderr and b"\x1b" not in stderr
    assert b"Applied 8 of 8 change(s)." in stdout


def test_a_batch_step_names_its_first_change_and_sums_its_waits() -> None:
    add = NlbNodeAdd(site="HQ", cluster_host="hq-cas01.contoso.local", server="HQ-CAS02",
                     interface="NLB", server_fqdn="hq-cas02.contoso.local",
                     node_interface="NLB")
    rebind = BindingChange(site="HQ", database="HQ-DB05\x1b[2J", before_target="a", target="b",
                           mailbox_count=1)
    step = batch_step(2, 5, [rebind, add])
    assert step.text.startswith("batch 2 of 5: rebind database HQ-DB05\\x1b[2J")
    assert step.text.endswith(" (and 1 more)")
    waits = [i.until.timeout_seconds for i in add.invocations() if i.until is not None]
    assert waits and step.wait_seconds == sum(waits)
    assert batch_step(1, 1, [rebind]).wait_seconds is None


def test_the_countdown_never_goes_below_zero() -> None:
    assert countdown(90) == "1:30"
    assert countdown(0.2) == "0:01"
    assert countdown(-5) == "0:00"
    assert countdown(3725) == "1:02:05"
    step = Step("batch 3 of 3: drain", 660.0)
    assert line(step, now=100.0, deadline=760.0) == "batch 3 of 3: drain — waits up to 11:00 more"
    assert line(step, now=800.0, deadline=760.0).endswith("up to 0:00 more")
    assert line(Step("verifying"), now=1.0, deadline=None) == "verifying"

"""Real processes: a second apply meets the first one's lock; SIGINT mid-apply releases it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from apply.labenv import Env


def _start(env: Env, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "casdesired", "apply", str(env.org_dir), *args],
        cwd=env.tmp,
        env={**os.environ, **env.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(env: Env, cmdlet: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e["cmdlet"] == cmdlet for e in env.cmdlets()):
            return
        time.sleep(0.05)
    raise AssertionError(f"{cmdlet} never ran")


def test_concurrent_apply_is_refused_and_sigint_finishes_the_batch_then_releases(
    env: Env,
) -> None:
    # Slow the first write batch so both the second apply and the signal land inside it.
    env.lab.faults.update({"cmdlets": [
        {"cmdlet": "Set-MailboxDatabase", "identity": "BR-DB01", "delay_seconds": 2.0,
         "fail": False}
    ]})
    first = _start(env, "--auto-approve", "--force")
    try:
        _wait_for(env, "Register-CasdesiredPlan")
        second = _start(env, "--auto-approve", "--force", "--lock-timeout", "0")
        _, err2 = second.communicate(timeout=60)
        assert second.returncode == 1
        assert "the organisation is locked by" in err2 and "casdesired unlock" in err2
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, err
    assert "SIGINT received" in err and "Traceback" not in err
    # The batch in flight finished (cmdlets cannot be recalled half-way); it is reported.
    assert "Applied 8 of 8 change(s)." in out
    assert env.current_lock() is None

"""Ctrl-C (SIGINT) or SIGTERM at the confirmation prompt cancels: nothing changed, lock released.

A real ``casdesired apply`` process on a pseudo-terminal (so it asks), against the loopback lab.
The test types nothing: it waits for the prompt, then sends the signal.
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import threading
import time

import pytest

from apply.labenv import Env
from casdesired.agent.protocol import is_fenced

PROMPT = "Apply these changes?"
TIMEOUT = 60.0
"""Only a broken apply gets near this: the waits below end on output or on the exit."""


class OnTerminal:
    """``casdesired apply`` with stdin and stdout on a pty, stderr on a pipe."""

    def __init__(self, env: Env, *args: str) -> None:
        master, slave = pty.openpty()
        self.master = master
        self.process = subprocess.Popen(
            [sys.executable, "-m", "casdesired", "apply", str(env.org_dir), *args],
            cwd=env.tmp,
            env={**os.environ, **env.env},
            stdin=slave,
            stdout=slave,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(slave)
        self.screen = bytearray()
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:  # EIO: the process closed its end of the terminal
                data = b""
            with self._changed:
                if not data:
                    self._changed.notify_all()
                    return
                self.screen += data
                self._changed.notify_all()

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        with self._changed:
            while text.encode() not in self.screen:
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():  # timed out, or the output ended
                    raise AssertionError(f"never showed {text!r}: {self.screen.decode()!r}")
                self._changed.wait(min(left, 0.5))

    def finish(self) -> tuple[int, str]:
        try:
            code = self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"still waiting at the prompt: {self.screen.decode()!r}") from None
        finally:
            self._reader.join(TIMEOUT)
            os.close(self.master)
        assert self.process.stderr is not None
        return code, self.process.stderr.read()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_at_the_prompt_cancels_releases_the_lock_and_changes_nothing(
    env: Env, signum: signal.Signals, code: int
) -> None:
    audit = env.tmp / "audit.jsonl"
    apply = OnTerminal(env, "--force", "--audit-log", str(audit))
    try:
        apply.wait_for(PROMPT)
        assert env.current_lock() is not None  # held while the person reads the plan
        apply.process.send_signal(signum)
        exit_code, err = apply.finish()
    finally:
        if apply.process.poll() is None:
            apply.process.kill()
    assert exit_code == code, err
    assert "casdesired: cancelled, nothing was changed" in err
    assert "letting the running step finish" not in err  # nothing was running
    assert "Traceback" not in err
    assert env.current_lock() is None
    writes = [e for e in env.cmdlets() if is_fenced(str(e["cmdlet"]))]  # the writes
    assert writes == [] and not audit.exists()

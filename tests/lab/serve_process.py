"""``casdesired lab serve`` as a real subprocess, stopped at the end whatever happened.

A test that starts the server must not leave it behind: not when an assertion fails, not when
the server ignores the signal it is sent (as it did when it inherited SIGINT ignored from a
background job), not when the banner never comes. Every wait has a timeout, and a timeout
ends in ``kill``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

BANNER_TIMEOUT = 60.0  # a loaded 2-core CI machine starts Python slowly
STOP_TIMEOUT = 10.0


@dataclass
class Served:
    """A running ``lab serve``: its process and the banner's ``name: value`` fields."""

    process: subprocess.Popen[str]
    fields: dict[str, str]

    def stop(self, sig: signal.Signals = signal.SIGINT) -> tuple[int, str]:
        """Send ``sig``; the exit code and everything it wrote on stderr.

        Raises AssertionError if it did not exit within STOP_TIMEOUT (it is killed then).
        """
        self.process.send_signal(sig)
        try:
            _, err = self.process.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _kill(self.process)
            raise AssertionError(
                f"lab serve still running {STOP_TIMEOUT:g} s after {sig.name}; killed it"
            ) from None
        return self.process.returncode, err


@contextmanager
def lab_serve(
    *args: str, env: dict[str, str] | None = None, ignore_sigint: bool = False
) -> Iterator[Served]:
    """Start ``casdesired lab serve ARGS``, wait for its banner, and end it on exit.

    ``ignore_sigint`` starts it with SIGINT ignored, as a background job of a
    non-interactive shell (``casdesired lab serve &`` in a script) is started.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "casdesired", "lab", "serve", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=_ignore_sigint if ignore_sigint else None,
    )
    try:
        yield Served(process, _banner(process))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _kill(process)
        else:
            process.communicate()  # close the pipes


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _kill(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.communicate()


def _banner(process: subprocess.Popen[str]) -> dict[str, str]:
    """The banner's fields, up to "Press Ctrl-C"; the process is killed if none comes in time
    (which ends its stdout, so the read below cannot hang)."""
    assert process.stdout is not None
    watchdog = threading.Timer(BANNER_TIMEOUT, process.kill)
    watchdog.start()
    fields: dict[str, str] = {}
    try:
        for line in process.stdout:
            match = re.match(r"\s+([\w ]+?):\s+(.*)$", line)
            if match:
                fields[match.group(1)] = match.group(2)
            if line.startswith("Press Ctrl-C"):
                return fields
    finally:
        watchdog.cancel()
        watchdog.join()
    err = process.stderr.read() if process.stderr else ""
    raise AssertionError(f"no banner from lab serve; stderr: {err}")

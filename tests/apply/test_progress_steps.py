"""Apply's progress while a batch runs: the step running and its own wait counted down, from
the agent's progress lines, through the real client against the lab (issue 13).

The organisation runs on a fake clock, so a two-minute NLB drain and a reconvergence of
several seconds take no real time; the agent's polls still report the seconds left on that
clock, which is what the display must show. stderr is made a terminal (the display is drawn
only there) and what rich draws on it is read back.
"""

from __future__ import annotations

import io
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apply.labenv import Env, lab_env
from casdesired.cli import main

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class FakeClock:
    """Wall and monotonic time that move only when the lab sleeps (thread-safe: the lab runs
    each command in a thread of its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.wall = time.time()
        self.mono = 0.0

    def time(self) -> float:
        with self._lock:
            return self.wall

    def monotonic(self) -> float:
        with self._lock:
            return self.mono

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.wall += seconds
            self.mono += seconds


class Terminal(io.StringIO):
    """stderr as a terminal: apply draws its progress on it."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def clocked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    with lab_env(tmp_path, monkeypatch, clock=FakeClock()) as env:
        yield env


def _apply(
    env: Env, monkeypatch: pytest.MonkeyPatch, *, json: bool = False
) -> tuple[int, str, str]:
    """The real CLI with stderr a terminal: its exit code, stdout, and the screen's text."""
    screen, out = Terminal(), io.StringIO()
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("NO_COLOR", raising=False)
    with monkeypatch.context() as patched:
        patched.setattr(sys, "stderr", screen)
        patched.setattr(sys, "stdout", out)
        args = ["apply", str(env.org_dir), "--auto-approve", "--force",
                "--audit-log", str(env.audit)]
        code = main([*args, "--format", "json"] if json else args)
    return code, out.getvalue(), ANSI.sub("", screen.getvalue())


def _prune_hq_cas02(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Apply the example, then take HQ-CAS02 out of its array: a drain, a removal and the
    cluster's reconvergence, each drawn out on the fake clock."""
    code, _out, screen = _apply(env, monkeypatch)
    assert code == 0, screen
    hq = env.org_dir / "hq.yaml"
    hq.write_text(hq.read_text().replace("members: [HQ-CAS01, HQ-CAS02]", "members: [HQ-CAS01]")
                  .replace("prune: false", "prune: true"))
    org = env.org_dir / "organisation.yaml"
    org.write_text(org.read_text().replace("allow_prune: false", "allow_prune: true"))
    env.organisation.configure(nlb_drain_seconds=120, nlb_convergence_seconds=5)


def test_a_batch_shows_its_step_running_and_counts_the_nlb_wait_down(
    clocked: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    _prune_hq_cas02(clocked, monkeypatch)
    code, out, screen = _apply(clocked, monkeypatch)
    assert code == 0, screen + out
    batch = re.search(r"batch (\d+) of (\d+): drain HQ-CAS02", screen)
    assert batch, screen
    head = f"batch {batch.group(1)} of {batch.group(2)}: "
    # Each step of the change as the agent starts it, with the longest that step may wait.
    assert (head + "drain HQ-CAS02 (drain timeout 10 min) (step 1 of 4) — waits up to 10:00 "
            "more") in screen
    assert head + "wait until HQ-CAS02 is Stopped (step 2 of 4) — waits up to 11:00 more" in screen
    assert head + "remove HQ-CAS02 from the NLB cluster on hq-cas01.contoso.local (step 3 of 4)" \
        in screen
    converging = head + "wait for the NLB cluster on hq-cas01.contoso.local to reconverge " \
        "(step 4 of 4) — waits up to "
    assert converging + "1:30 more" in screen
    # Then, at each poll while the cluster reconverges (5 s on the lab's clock, a poll a
    # second), the seconds the agent says are left before the wait's timeout.
    shown = re.findall(re.escape(converging) + r"(\d+:\d\d) more", screen)
    polls = [t for t in dict.fromkeys(shown) if t != "1:30"]
    assert len(polls) >= 3, shown
    seconds = [int(t[:-3]) * 60 + int(t[-2:]) for t in polls]
    assert seconds == sorted(seconds, reverse=True) and all(85 <= s < 90 for s in seconds)
    assert "drain HQ-CAS02" not in out  # stdout holds the report only


def test_json_stdout_holds_no_progress(clocked: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    _prune_hq_cas02(clocked, monkeypatch)
    code, out, screen = _apply(clocked, monkeypatch, json=True)
    assert code == 0, screen
    assert "(step 1 of 4)" in screen
    assert "step " not in out and "casdesired-progress" not in out
    assert '"outcome": "applied"' in out

"""Real processes: a second apply meets the first one's lock; SIGINT/SIGTERM stop between batches.

No timing guesses: a lab gate holds the first apply inside its second batch (a known cmdlet
of that batch waits at the gate) until the test has done what it wants to do while that batch
is in flight. ``CASDESIRED_MAX_BATCH=3`` splits the example's 8 changes into batches of 3, 3, 2.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import IO

import pytest

from apply.labenv import Env, cli
from casdesired.agent.protocol import is_fenced
from casdesired.apply.execute import MAX_BATCH_ENV
from casdesired.plan.plan import Plan

GATE = "batch-2-in-flight"
TIMEOUT = 60.0
"""Only a broken apply gets near this: every wait below ends on an event, not a clock."""


class Apply:
    """An apply in its own process, its output read as it comes (to wait for a line)."""

    def __init__(self, env: Env, *args: str, batch: int | None = None) -> None:
        extra = {MAX_BATCH_ENV: str(batch)} if batch is not None else {}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "casdesired", "apply", str(env.org_dir), *args],
            cwd=env.tmp,
            env={**os.environ, **env.env, **extra},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._err_lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.out, None)),
            threading.Thread(
                target=self._read, args=(self.process.stderr, self.err, self._err_lines)
            ),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str], into: list[str], lines: queue.Queue[str] | None) -> None:
        for line in stream:
            into.append(line)
            if lines is not None:
                lines.put(line)

    def wait_stderr(self, text: str) -> None:
        while True:
            try:
                line = self._err_lines.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"never said {text!r}; stderr: {''.join(self.err)}") from None
            if text in line:
                return

    def finish(self) -> tuple[int, str, str]:
        code = self.process.wait(timeout=TIMEOUT)
        for reader in self._readers:
            reader.join(timeout=TIMEOUT)
        return code, "".join(self.out), "".join(self.err)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.finish()


def _set_changes(env: Env) -> list[tuple[str, str]]:
    """(cmdlet, Identity) of every Set-MailboxDatabase the lab ran, in order."""
    return [
        (str(e["cmdlet"]), str(e["parameters"].get("Identity")))
        for e in env.cmdlets()
        if e["cmdlet"] == "Set-MailboxDatabase"
    ]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_batch_finishes_that_batch_starts_no_other_and_releases_the_lock(
    env: Env, capsys: pytest.CaptureFixture[str], signum: signal.Signals, code: int
) -> None:
    saved = env.tmp / "before.json"
    assert cli(capsys, "plan", str(env.org_dir), "--out", str(saved))[0] == 0
    changes = Plan.load(saved).changes
    assert len(changes) == 8
    # Batch 2 is BR-DB01, BR-DB02, BR-DB03: hold it at BR-DB02, half-way through.
    env.lab.faults.update({"cmdlets": [
        {"cmdlet": "Set-MailboxDatabase", "identity": "BR-DB02", "fail": False, "gate": GATE}
    ]})
    gate = env.lab.faults.gate(GATE)
    first = Apply(env, "--auto-approve", "--force", batch=3)
    try:
        assert gate.wait_reached(TIMEOUT), "the second batch never reached BR-DB02"
        assert _set_changes(env) == [("Set-MailboxDatabase", "BR-DB01")]  # in flight, not done
        if signum is signal.SIGINT:
            # While the batch is in flight a second pipeline is refused, naming the holder.
            second = Apply(env, "--auto-approve", "--force", "--lock-timeout", "0")
            code2, _out2, err2 = second.finish()
            assert code2 == 1
            assert "the organisation is locked by" in err2 and "casdesired unlock" in err2
        first.process.send_signal(signum)
        first.wait_stderr(f"{signum.name} received")  # noted while the batch still waits
        gate.open()
        exit_code, out, err = first.finish()
    finally:
        gate.open()
        first.kill()
    assert exit_code == code, err
    assert "Traceback" not in err
    # The batch in flight finished (a cmdlet cannot be recalled half-way); none after it began.
    assert "Applied 6 of 8 change(s)." in out
    for change in changes[:6]:
        assert f"applied: {change.describe()}" in out
    for change in changes[6:]:
        assert f"not attempted: {change.describe()}" in out
    assert "Stopped: interrupted: no further batch was started." in out
    assert "2 not attempted" in err
    # The journal agrees: batch 2 ran to its end, batch 3 (HQ-DB05, HQ-DB06) never started.
    assert [i for _, i in _set_changes(env)] == ["BR-DB01", "BR-DB02", "BR-DB03"]
    renewals = [e for e in env.cmdlets() if e["cmdlet"] == "Update-CasdesiredLock"]
    assert len(renewals) == 2  # one per batch that ran
    assert env.current_lock() is None
    # A plan made now shows exactly what was not attempted.
    code, out, _ = cli(capsys, "plan", str(env.org_dir))
    remainder = [line.strip() for line in out.splitlines() if line.strip()[:2] in ("+ ", "~ ")]
    assert len(remainder) == 2
    assert "HQ-DB05" in remainder[0] and "HQ-DB06" in remainder[1]


def test_the_batch_size_knob_refuses_a_bad_value_before_any_write(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MAX_BATCH_ENV, "0")
    audit = env.org_dir / "audit.jsonl"
    commands_before = env.lab.journal.count("command")
    code, _out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                          "--audit-log", str(audit))
    assert code == 1
    assert f"{MAX_BATCH_ENV} must be a whole number of at least 1, not '0'" in err
    assert "Traceback" not in err
    # Refused before the lock was taken: nothing reached the server, no half-written audit.
    assert env.lab.journal.count("command") == commands_before
    assert not audit.exists()
    writes = [e for e in env.cmdlets() if is_fenced(str(e["cmdlet"]))]  # the writes
    assert writes == [] and env.current_lock() is None


def test_a_killed_applys_batch_cannot_overwrite_a_newer_apply_after_unlock(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first apply's batch 2 (BR-DB01, BR-DB02, BR-DB03) is held while BR-DB01 is written.
    env.lab.faults.update({"cmdlets": [
        {"cmdlet": "Set-MailboxDatabase", "identity": "BR-DB01", "fail": False, "gate": GATE,
         "times": 1}
    ]})
    gate = env.lab.faults.gate(GATE)
    first = Apply(env, "--auto-approve", "--force", batch=3)
    try:
        assert gate.wait_reached(TIMEOUT), "the second batch never reached BR-DB01"
        # kill -9: the runner is gone, its batch goes on on the endpoint (nothing recalls it).
        first.process.kill()
        first.finish()
        held = env.current_lock()
        assert held is not None
        code, out, err = cli(capsys, "unlock", held.lock_id, "--config", str(env.org_dir))
        assert code == 0, err
        # What the endpoint knows, and what becomes of the killed apply's batch.
        assert f"Removed lock {held.lock_id} held by " in out
        assert f"last renewed {held.renewed}" in out
        assert "that batch stops before its next change" in out

        # A different desired state: HQ now names BR-DB02 (explicit names beat Branch's
        # pattern), so the newer apply binds it to HQ's array, sets it and verifies it.
        hq = env.org_dir / "hq.yaml"
        hq.write_text(hq.read_text().replace("names: [HQ-DB01, HQ-DB02]",
                                             "names: [HQ-DB01, HQ-DB02, BR-DB02]"))
        code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                             "--audit-log", str(env.audit))
        assert code == 0, err
        assert "rebind database BR-DB02: br-cas01.contoso.local -> outlook-hq.contoso.local" in out
    finally:
        gate.open()  # the killed apply's batch resumes: BR-DB01's write was already running
        first.kill()

    def zombie_done() -> bool:
        entries = env.lab.journal.entries(["fence", "cmdlet"])
        return any(e["kind"] == "fence" and not e["ok"] for e in entries) or any(
            e.get("cmdlet") == "Set-MailboxDatabase"
            and e["parameters"].get("Identity") == "BR-DB03" for e in entries
        )

    deadline = time.monotonic() + TIMEOUT
    while not zombie_done():
        assert time.monotonic() < deadline, "the killed apply's batch never went on"
        time.sleep(0.02)
    # It stopped before its next write: BR-DB02 keeps what the newer apply set and verified.
    code, out, _ = cli(capsys, "plan", str(env.org_dir))
    assert code == 0
    assert "No changes. The live organisation matches the desired state." in out
    written = [(i, str(e["parameters"].get("RpcClientAccessServer"))) for e in env.cmdlets()
               if e["cmdlet"] == "Set-MailboxDatabase"
               and (i := str(e["parameters"].get("Identity"))) == "BR-DB02"]
    assert written == [("BR-DB02", "outlook-hq.contoso.local")]
    (fenced,) = [e for e in env.lab.journal.entries(["fence"]) if not e["ok"]]
    assert fenced["lock_id"] == held.lock_id and fenced["before"] == "Set-MailboxDatabase"

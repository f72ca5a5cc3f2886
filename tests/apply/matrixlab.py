"""The lab the fault matrix shares across its cells, and how a cell reads what a run left.

One lab (and its DNS server) for all 120 cells, reset before each: the organisation back to its
seed, faults cleared, shells closed, journal emptied. A cell's fault is aimed at one command
execution; a lost answer's run is held at a gate until the client is done
(test_fault_matrix.py says why).
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from apply.labenv import SECRET, SITES
from casdesired.agent.protocol import is_fenced
from casdesired.apply.execute import MAX_BATCH_ENV
from casdesired.changes.types import Change
from casdesired.cli import main
from casdesired.lab.control import TOKEN_HEADER
from casdesired.lab.dns import LabDnsServer
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import Faults, WireFault
from casdesired.lab.journal import Journal
from casdesired.lab.server import Lab, LabCredentials
from casdesired.plan.plan import Plan

TIMEOUT = 30.0
GATE = "abandoned"

RELEASED = re.compile(
    r"casdesired: released lock (\S+): this apply does not hold the organisation lock any more$"
)
NOT_HELD = re.compile(
    r"casdesired: lock (\S+) is not held: the organisation is not locked by this apply, and a "
    r"late request of this apply can no longer lock it$"
)
KEPT = re.compile(
    r"casdesired: warning: lock (\S+) is kept, so the organisation stays locked: .* break it "
    r"with: (casdesired unlock \S+ --config \S+)$"
)
MAY_BE_HELD = re.compile(
    r"casdesired: warning: lock (\S+) may still be held: .* to break it now: "
    r"(casdesired unlock \S+ --config \S+)$"
)
@dataclass
class Matrix:
    lab: Lab
    org_dir: Path
    root: Path
    yaml: str
    changes: list[Change] = field(default_factory=list)

    def configure(self, operation_seconds: int) -> None:
        (self.org_dir / "organisation.yaml").write_text(
            self.yaml.replace("operation_seconds: 120", f"operation_seconds: {operation_seconds}")
        )

    def reset(self) -> None:
        """The organisation back to its seed, faults cleared, shells closed, journal emptied."""
        answer = requests.post(f"{self.lab.control_url}/reset",
                               headers={TOKEN_HEADER: self.lab.token}, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        # The matrix is about the wire: a cluster that reconverges at once spares every cell a
        # second of polling (convergence itself: tests/apply/test_field_logons.py, tests/lab).
        self.lab.organisation.configure(nlb_convergence_seconds=0.0)  # type: ignore[attr-defined]
        self.lab.journal.clear()

    def open_shell_ids(self) -> list[str]:
        """The shells the lab has open (``GET /lab/shells``)."""
        answer = requests.get(f"{self.lab.control_url}/shells",
                              headers={TOKEN_HEADER: self.lab.token}, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        return [str(shell["id"]) for shell in answer.json()["shells"]]

    def cmdlets(self) -> list[dict[str, object]]:
        return self.lab.journal.entries(["cmdlet"])

    def idle(self) -> bool:
        """No command of this lab is still running (a shell's command runs in its own thread,
        named after it, and goes on after its client gave up, as on Windows)."""
        commands = {f"lab-command-{e['command_id']}"[:20]
                    for e in self.lab.journal.entries(["command"])}
        return not any(t.name in commands for t in threading.enumerate())


@contextmanager
def shared_lab(root: Path) -> Iterator[Matrix]:
    """The lab, the example organisation pointed at it, and its fault-free plan."""
    faults, journal = Faults(), Journal()
    organisation = Organisation.from_seed(faults=faults, journal=journal)
    creds = LabCredentials(password=SECRET)
    with (
        pytest.MonkeyPatch.context() as patch,
        Lab(organisation, auth="ntlm", credentials=creds, faults=faults, journal=journal) as lab,
        LabDnsServer(organisation) as dns_server,
    ):
        org_dir = root / "org"
        shutil.copytree(SITES, org_dir)
        text = (org_dir / "organisation.yaml").read_text()
        assert "operation_seconds: 120" in text
        text = text.replace("endpoint: lab", f"endpoint: {lab.url}")
        text = text.replace("resolvers: [lab]", f"resolvers: [{dns_server.address}]")
        patch.setenv("CASDESIRED_USERNAME", creds.username)
        patch.setenv("CASDESIRED_PASSWORD", SECRET)
        patch.setenv(MAX_BATCH_ENV, "3")
        patch.chdir(root)
        matrix = Matrix(lab, org_dir, root, text)
        matrix.reset()
        matrix.configure(10)
        assert main(["plan", str(org_dir), "--out", str(root / "plan.json")]) == 0
        matrix.changes = Plan.load(root / "plan.json").changes
        yield matrix


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI; (exit code, stdout, stderr), never with a traceback."""
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def arm(matrix: Matrix, action: str, kind: str, execution: int,
        gate: dict[str, object]) -> threading.Thread | None:
    """Aim the fault at ``action`` of the ``execution``-th command execution (1-based).

    A Receive's fault is aimed only once that execution's run is held at the cmdlet ``gate``
    names (:data:`GATE`): then the run is known to be on its way before the client gives up
    and deletes its shell (which kills it), and a slow endpoint's "no output yet" Receives
    cannot shift the aim. The helper thread that aims it is returned, to be joined."""
    faults = matrix.lab.faults
    if action != "Receive":
        faults.update({"wire": [{"kind": kind, "action": action, "after": execution - 1}]})
        return None
    faults.update({"cmdlets": [{**gate, "fail": False, "times": 1, "gate": GATE}]})
    reached = faults.gate(GATE)

    def aim() -> None:
        if reached.wait_reached(TIMEOUT):
            # Appended, not update()d: that would restart the gate's own count.
            faults.wire.append(WireFault(kind, action="Receive"))  # type: ignore[arg-type]

    helper = threading.Thread(target=aim)
    helper.start()
    return helper


def ran(matrix: Matrix, change: Change) -> bool:
    """Whether the lab ran every write of ``change`` (ok); it never ran only part of one. Its
    reads (the waits for a cluster to reconverge) look like the plan's reads, so only the
    writes tell."""
    cmdlets = matrix.cmdlets()
    found = [
        [e for e in cmdlets if e["cmdlet"] == i.cmdlet and e["parameters"] == i.parameters]
        for i in change.invocations()
        if is_fenced(i.cmdlet)
    ]
    assert all(e["ok"] for entries in found for e in entries), found
    assert all(found) or not any(found), f"{change.describe()} ran in part: {found}"
    return all(found)


def report(out: str) -> list[tuple[str, str]]:
    """(result, change) of each line of an apply's report."""
    statuses = ("applied", "failed", "not attempted", "unknown")
    lines = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    return [
        (status, line[len(status) + 2:])
        for line in lines
        for status in statuses
        if line.startswith(f"{status}: ")
    ]


def lock_statement(line: str) -> tuple[str, str, str | None] | None:
    """(what, lock id, unlock command) when ``line`` says where an apply's lock stands."""
    for name, pattern in (("released", RELEASED), ("not held", NOT_HELD), ("kept", KEPT),
                          ("may still be held", MAY_BE_HELD)):
        found = pattern.match(line)
        if found:
            command = found.group(2) if pattern.groups > 1 else None
            return name, found.group(1), command
    return None



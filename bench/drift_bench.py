"""Benchmark `casdesired drift` against `casdesired plan`: 10,000 databases, 10 drifted.

Usage: .venv/bin/python bench/drift_bench.py [--databases 10000] [--drifted 10] [--latency 0,25]
                                             [--history N]

Each run starts a lab on loopback (NTLM with message encryption, as for Windows) from the
contoso seed, applies the example organisation with the real CLI (so the lab matches git and
its audit log holds casdesired's own apply), adds databases to site Branch (bound to its array,
as Exchange binds a new database: in sync with git), then has another administrator
(CONTOSO\\alice) rebind some of them out of band. ``--history N`` first fills the window with N
more audit entries (other databases set to what they already are), so the search returns many.
It then runs the same code paths as the CLI:
`plan` (read, diff, mailbox count, JSON) and `drift` (the same read with the audit search in its
request, diff, mailbox count, attribution, JSON), and prints for each: wall time, WinRM HTTP
requests and WS-Man operations (the lab's journal), command executions, what it found, and the
agent's peak memory as the lab's model estimates it (the 150 MB shell quota of 2008 R2).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from casdesired.cli import main as cli
from casdesired.desired.loader import load_desired
from casdesired.drift.render import JsonRenderer as DriftJson
from casdesired.drift.run import drift
from casdesired.drift.sources import DEFAULT_RESULT_SIZE
from casdesired.lab.exchange.administrators import run_as
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.server import Lab, LabCredentials
from casdesired.plan.build import connect, make_plan
from casdesired.plan.render_json import JsonRenderer as PlanJson

ROOT = Path(__file__).resolve().parent.parent
SEED_DATABASES = 12


def run(
    databases: int, drifted: int, latency_ms: int, workdir: Path, history: int = 0
) -> list[dict[str, object]]:
    faults, journal = Faults(), Journal()
    organisation = Organisation.from_seed(faults=faults, journal=journal)
    creds = LabCredentials()
    with Lab(organisation, auth="ntlm", credentials=creds, faults=faults, journal=journal) as lab:
        org_dir = workdir / f"org-{databases}-{latency_ms}"
        shutil.copytree(ROOT / "sites", org_dir)
        yaml_path = org_dir / "organisation.yaml"
        text = yaml_path.read_text().replace("endpoint: lab", f"endpoint: {lab.url}")
        yaml_path.write_text(text.replace("resolvers: [lab]", "resolvers: []"))
        environ = {"CASDESIRED_USERNAME": creds.username, "CASDESIRED_PASSWORD": creds.password}
        os.environ.update(environ)
        audit_log = org_dir.parent / f"audit-{databases}-{latency_ms}.jsonl"
        code = cli(["apply", str(org_dir), "--auto-approve", "--force",
                    "--audit-log", str(audit_log), "--rollback-out", str(workdir / "rb.json")])
        if code != 0:
            raise SystemExit(f"the example organisation did not apply (exit {code})")
        extra = databases - SEED_DATABASES
        organisation.add_databases(extra, "Branch", "BR-DB-BENCH-")  # bound to outlook-branch
        width = max(2, len(str(extra)))
        for number in range(history):
            name = f"BR-DB-BENCH-{drifted + 1 + number % (extra - drifted):0{width}d}"
            run_as(organisation, "CONTOSO\\bob", "Set-MailboxDatabase",
                   {"Identity": name, "RpcClientAccessServer": "outlook-branch.contoso.local"})
        for number in range(1, drifted + 1):
            run_as(organisation, "CONTOSO\\alice", "Set-MailboxDatabase",
                   {"Identity": f"BR-DB-BENCH-{number:0{width}d}",
                    "RpcClientAccessServer": "br-cas01.contoso.local"})
        desired = load_desired(org_dir)
        faults.update({"latency_ms": latency_ms})
        rows = []
        for command in ("plan", "drift"):
            journal.clear()
            started = time.perf_counter()
            with connect(desired.organisation, environ) as client:
                if command == "plan":
                    plan = make_plan(desired, client).plan
                    PlanJson().render(plan, io.StringIO())
                    found, entries = len(plan.changes), 0
                else:
                    report = drift(desired, client, now=datetime.now(timezone.utc),
                                   audit_log=audit_log, result_size=DEFAULT_RESULT_SIZE)
                    DriftJson().render(report, io.StringIO())
                    found, entries = len(report.drifted), report.audit.entries
            rows.append({
                "command": command, "databases": databases, "latency_ms": latency_ms,
                "wall_s": time.perf_counter() - started, "http": journal.count("http"),
                "wsman": journal.count("wsman"), "commands": journal.count("command"),
                "executions": client.executions, "found": found, "entries": entries,
                "memory_mb": max(float(e.get("memory_mb") or 0)
                                 for e in journal.entries(["process"])),
            })
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", type=int, default=10_000)
    parser.add_argument("--drifted", type=int, default=10)
    parser.add_argument("--latency", default="0,25")
    parser.add_argument("--history", type=int, default=0)
    args = parser.parse_args()
    print(f"{'command':>7} {'dbs':>6} {'lat ms':>6} {'wall s':>7} {'http':>5} {'wsman':>5} "
          f"{'cmds':>4} {'found':>6} {'audit entries':>13} {'agent MB':>8}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for latency in (int(s) for s in args.latency.split(",")):
            for r in run(args.databases, args.drifted, latency, Path(tmp), args.history):
                print(f"{r['command']:>7} {r['databases']:>6} {r['latency_ms']:>6} "
                      f"{r['wall_s']:>7.2f} {r['http']:>5} {r['wsman']:>5} {r['commands']:>4} "
                      f"{r['found']:>6} {r['entries']:>13} {r['memory_mb']:>8.0f}", flush=True)


if __name__ == "__main__":
    main()

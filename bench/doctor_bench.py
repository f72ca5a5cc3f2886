"""Benchmark `casdesired doctor`: how long the checklist takes, and what it costs the endpoint.

Usage: .venv/bin/python bench/doctor_bench.py [--databases 12,10000] [--latency 0,25]

Each run starts a lab on loopback (NTLM with message encryption, as for Windows) from the
contoso seed, adds databases to site HQ (bound to its array, as Exchange binds a new database),
points a copy of the example organisation at it (no DNS resolvers: the DNS checks are the
plan's lookups, measured by plan_bench.py) and runs the same code as the CLI: every check,
then the JSON report. It prints the wall time, WinRM HTTP requests and WS-Man operations (the
lab's journal), command executions, the agent's peak memory as the lab's model estimates it,
and the checks' outcome. Doctor runs every check on the endpoint in ONE command execution,
whatever the organisation's size: only the Exchange reads' output grows with it.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from casdesired.desired.loader import load_desired
from casdesired.doctor.render import JsonRenderer
from casdesired.doctor.run import diagnose
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.server import Lab, LabCredentials

ROOT = Path(__file__).resolve().parent.parent
SEED_DATABASES = 12


def run(databases: int, latency_ms: int, workdir: Path) -> dict[str, object]:
    faults, journal = Faults(), Journal()
    organisation = Organisation.from_seed(faults=faults, journal=journal)
    if databases > SEED_DATABASES:
        organisation.add_databases(databases - SEED_DATABASES, "HQ", "HQ-DB-BENCH-")
    creds = LabCredentials()
    with Lab(organisation, auth="ntlm", credentials=creds, faults=faults, journal=journal) as lab:
        org_dir = workdir / f"org-{databases}-{latency_ms}"
        shutil.copytree(ROOT / "sites", org_dir)
        yaml_path = org_dir / "organisation.yaml"
        text = yaml_path.read_text().replace("endpoint: lab", f"endpoint: {lab.url}")
        yaml_path.write_text(text.replace("resolvers: [lab]", "resolvers: []"))
        environ = {"CASDESIRED_USERNAME": creds.username, "CASDESIRED_PASSWORD": creds.password}
        desired = load_desired(org_dir)
        faults.update({"latency_ms": latency_ms})
        journal.clear()
        started = time.perf_counter()
        report = diagnose(desired, environ)
        JsonRenderer().render(report, io.StringIO())
        wall = time.perf_counter() - started
        outcome = Counter(check.status.value for check in report.checks)
        return {
            "databases": databases, "latency_ms": latency_ms, "wall_s": wall,
            "http": journal.count("http"), "wsman": journal.count("wsman"),
            "executions": report.executions,
            "memory_mb": max(float(e.get("memory_mb") or 0)
                             for e in journal.entries(["process"])),
            "outcome": ", ".join(f"{n} {s}" for s, n in sorted(outcome.items())),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="12,10000")
    parser.add_argument("--latency", default="0,25")
    args = parser.parse_args()
    print(f"{'dbs':>6} {'lat ms':>6} {'wall s':>7} {'http':>5} {'wsman':>5} {'execs':>5} "
          f"{'agent MB':>8}  checks", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for databases in (int(s) for s in args.databases.split(",")):
            for latency in (int(s) for s in args.latency.split(",")):
                r = run(databases, latency, Path(tmp))
                print(f"{r['databases']:>6} {r['latency_ms']:>6} {r['wall_s']:>7.2f} "
                      f"{r['http']:>5} {r['wsman']:>5} {r['executions']:>5} "
                      f"{r['memory_mb']:>8.0f}  {r['outcome']}", flush=True)


if __name__ == "__main__":
    main()

"""Benchmark `casdesired plan` against lab organisations of ~20, 2,000 and 10,000 databases.

Usage: .venv/bin/python bench/plan_bench.py [--sizes 20,2000,10000] [--latency 0,25]
                                            [--delivery stdin|file]

Each run starts a lab on loopback (NTLM with message encryption, as for Windows), seeded from
contoso plus extra databases in site Branch (bound to BR-CAS01, so every one of them needs a
rebinding to outlook-branch: the diff, the plan and its JSON work on the whole size), and runs
the same code path as the CLI: connect, read once, diff, plan, render JSON. Printed per run:
wall time, WinRM requests (journal kinds "http" and "wsman"), command executions, the diff+plan
CPU time, and peak memory (traced Python allocations of diff+plan, and the process's max RSS,
which includes the in-process lab). ``--delivery file`` measures the file delivery with the agent
already on the host (a first read puts it there, and is not counted): its steady state.
"""

from __future__ import annotations

import argparse
import io
import resource
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

from casdesired.desired.config import DesiredState
from casdesired.desired.loader import load_desired
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.server import Lab, LabCredentials
from casdesired.live.reader import read_live
from casdesired.live.state import LiveState
from casdesired.plan.build import connect, nlb_hosts, plan_from_live
from casdesired.plan.plan import Plan
from casdesired.plan.render_json import JsonRenderer

ROOT = Path(__file__).resolve().parent.parent
SEED_DATABASES = 12


def plan_and_render(desired: DesiredState, live: LiveState) -> Plan:
    """What the CLI does after reading: diff, build the plan, render it as JSON. (Counting the
    rebound databases' mailboxes is a second command execution, measured by
    bench/mailbox_count_bench.py; left out here, the counts stay 0.)"""
    plan = plan_from_live(desired, live)
    JsonRenderer().render(plan, io.StringIO())
    return plan


def run(size: int, latency_ms: int, workdir: Path, delivery: str = "stdin") -> dict[str, float]:
    faults, journal = Faults(), Journal()
    organisation = Organisation.from_seed(faults=faults, journal=journal)
    if size > SEED_DATABASES:
        organisation.add_databases(size - SEED_DATABASES, "Branch", "BR-DB-BENCH-")
    creds = LabCredentials()
    with Lab(organisation, auth="ntlm", credentials=creds, faults=faults, journal=journal) as lab:
        org_dir = workdir / f"org-{size}-{latency_ms}"
        shutil.copytree(ROOT / "sites", org_dir)
        yaml_path = org_dir / "organisation.yaml"
        # Address the lab as a Windows endpoint (a URL, credentials from the environment). Its
        # DNS server only exists for `endpoint: lab`, and DNS is not what this measures.
        text = yaml_path.read_text().replace("endpoint: lab", f"endpoint: {lab.url}")
        text = text.replace("  credentials:", f"  agent: {{delivery: {delivery}}}\n  credentials:")
        yaml_path.write_text(text.replace("resolvers: [lab]", "resolvers: []"))
        environ = {"CASDESIRED_USERNAME": creds.username, "CASDESIRED_PASSWORD": creds.password}
        desired = load_desired(org_dir)
        if desired.has_errors():
            raise SystemExit("\n".join(str(d) for d in desired.diagnostics))
        if delivery == "file":  # the agent file is written by a host's first run only
            with connect(desired.organisation, environ) as client:
                read_live(client, nlb_hosts=nlb_hosts(desired))
        faults.update({"latency_ms": latency_ms})
        journal.clear()
        started = time.perf_counter()
        with connect(desired.organisation, environ) as client:
            live = read_live(client, nlb_hosts=nlb_hosts(desired))
        read_done = time.perf_counter()
        cpu = time.process_time()
        plan_and_render(desired, live)
        diff_cpu = time.process_time() - cpu
        wall = time.perf_counter() - started
        # Memory in a second pass: tracemalloc slows allocation-heavy code several-fold.
        tracemalloc.start()
        plan = plan_and_render(desired, live)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        requests = journal.count("http")
        return {
            "databases": len(live.estate.databases),
            "latency_ms": latency_ms,
            "wall_s": wall,
            "read_s": read_done - started,
            "http_requests": requests,
            "wsman_ops": journal.count("wsman"),
            "commands": journal.count("command"),
            "changes": len(plan.changes),
            "diff_plan_cpu_s": diff_cpu,
            "diff_plan_peak_mib": traced_peak / 2**20,
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,2000,10000")
    parser.add_argument("--latency", default="0,25")
    parser.add_argument("--delivery", choices=("stdin", "file"), default="stdin")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    latencies = [int(s) for s in args.latency.split(",")]
    header = (
        f"{'dbs':>6} {'lat ms':>6} {'wall s':>7} {'read s':>7} {'http':>5} {'wsman':>5} "
        f"{'cmds':>4} {'changes':>7} {'diff+plan cpu s':>15} {'traced MiB':>10} {'maxrss MiB':>10}"
    )
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            for latency in latencies:
                r = run(size, latency, Path(tmp), args.delivery)
                print(
                    f"{r['databases']:>6} {r['latency_ms']:>6} {r['wall_s']:>7.2f} "
                    f"{r['read_s']:>7.2f} {r['http_requests']:>5} {r['wsman_ops']:>5} "
                    f"{r['commands']:>4} {r['changes']:>7} {r['diff_plan_cpu_s']:>15.3f} "
                    f"{r['diff_plan_peak_mib']:>10.1f} {r['max_rss_mib']:>10.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()

"""Benchmark counting mailboxes: only the databases a plan rebinds, against the whole organisation.

Usage: .venv/bin/python bench/mailbox_count_bench.py [--databases 2000] [--mailboxes 100000]
       [--cost-ms 2.0] [--modes scoped,whole]

Starts a lab on loopback (NTLM with message encryption, as for Windows) from the contoso seed
plus extra databases in site HQ (bound to its array, and outside the example's name patterns:
unmanaged, so the plan still has the example's 5 rebindings) holding together about
``--mailboxes`` mailboxes. The lab's cost model charges ``--cost-ms`` of server time for every
object a cmdlet returns (``object_cost_ms``; 2 ms is an order of magnitude for a mailbox object
crossing a remote PowerShell session, not a measurement of Windows).

Modes:
  scoped  what `casdesired plan` does: read once, diff, then count the mailboxes of the
          databases the plan rebinds (one `Get-Mailbox -Database` each, one execution)
  whole   what it did before: the same read, then `Get-Mailbox -ResultSize Unlimited` over
          the whole organisation, grouped by database (one execution)

Printed per mode: seconds for the read, for the count, in all; command executions; mailboxes
the count enumerated on the server.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from casdesired.changes.types import BindingChange
from casdesired.desired.loader import load_desired
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.server import Lab, LabCredentials
from casdesired.live.mailboxes import count_all, count_mailboxes
from casdesired.live.reader import read_live
from casdesired.plan.build import connect, nlb_hosts, plan_from_live


def _mailboxes(organisation: Organisation) -> int:
    """Every mailbox of the lab, in every domain of the forest."""
    return sum(
        d["mailboxes"] + sum((d.get("child_mailboxes") or {}).values())
        for d in organisation.snapshot()["databases"]
    )


ROOT = Path(__file__).resolve().parent.parent
SEED_DATABASES = 12


def run(
    mode: str, databases: int, mailboxes: int, cost_ms: float, workdir: Path
) -> dict[str, float]:
    faults, journal = Faults(), Journal()
    organisation = Organisation.from_seed(faults=faults, journal=journal)
    seeded = _mailboxes(organisation)
    extra = databases - SEED_DATABASES
    each = max(0, (mailboxes - seeded) // extra) if extra > 0 else 0
    if extra > 0:
        organisation.add_databases(extra, "HQ", "HQ-DB-BENCH-", mailboxes=(each, each))
    organisation.configure(object_cost_ms=cost_ms)
    total = _mailboxes(organisation)
    creds = LabCredentials()
    with Lab(organisation, auth="ntlm", credentials=creds, faults=faults, journal=journal) as lab:
        org_dir = workdir / f"org-{mode}"
        shutil.copytree(ROOT / "sites", org_dir)
        yaml_path = org_dir / "organisation.yaml"
        # Address the lab as a Windows endpoint; its DNS server only exists for `endpoint: lab`.
        text = yaml_path.read_text().replace("endpoint: lab", f"endpoint: {lab.url}")
        yaml_path.write_text(text.replace("resolvers: [lab]", "resolvers: []"))
        environ = {"CASDESIRED_USERNAME": creds.username, "CASDESIRED_PASSWORD": creds.password}
        desired = load_desired(org_dir)
        journal.clear()
        started = time.perf_counter()
        with connect(desired.organisation, environ) as client:
            live = read_live(client, nlb_hosts=nlb_hosts(desired))
            read_done = time.perf_counter()
            counted: dict[str, int] = {}

            def scoped(names: list[str]) -> dict[str, int]:
                counted.update(count_mailboxes(client, names))
                return counted

            if mode == "scoped":
                plan = plan_from_live(desired, live, count=lambda names: scoped(list(names)))
            else:
                counted = count_all(client)
                plan = plan_from_live(desired, live)
        done = time.perf_counter()
    return {
        "databases": len(live.estate.databases),
        "mailboxes": total,
        "rebindings": sum(1 for c in plan.changes if isinstance(c, BindingChange)),
        "read_s": read_done - started,
        "count_s": done - read_done,
        "total_s": done - started,
        "commands": journal.count("command"),
        "enumerated": sum(counted.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", type=int, default=2000)
    parser.add_argument("--mailboxes", type=int, default=100_000)
    parser.add_argument("--cost-ms", type=float, default=2.0)
    parser.add_argument("--modes", default="scoped,whole")
    args = parser.parse_args()
    print(
        f"{'mode':>7} {'dbs':>6} {'mailboxes':>9} {'rebinds':>7} {'read s':>7} {'count s':>8} "
        f"{'total s':>8} {'cmds':>4} {'enumerated':>10}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            r = run(mode, args.databases, args.mailboxes, args.cost_ms, Path(tmp))
            print(
                f"{mode:>7} {r['databases']:>6,} {r['mailboxes']:>9,} {r['rebindings']:>7} "
                f"{r['read_s']:>7.2f} {r['count_s']:>8.2f} {r['total_s']:>8.2f} "
                f"{r['commands']:>4} {r['enumerated']:>10,}",
                flush=True,
            )


if __name__ == "__main__":
    main()

"""Benchmark `casdesired import` on lab organisations of 12 (the seed) to 10,000 databases.

Usage: .venv/bin/python bench/import_bench.py [--sizes 12,10000] [--latency 0,25]

Each run starts a lab on loopback (NTLM with message encryption, as for Windows) seeded from
contoso plus extra databases in site HQ (bound to its array, as Exchange binds a new one), then
runs the real CLI as an administrator would: `casdesired import DIR` with the connection as
options, once per variant — the default (NLB read on every CAS, every mailbox counted),
`--no-mailbox-count`, and `--patterns` — then `casdesired plan DIR --detailed-exitcode` on the
result, which must exit 0. Printed per run: command executions, HTTP requests and WS-Man
operations (the lab's journal), seconds of import, and seconds of the plan that follows.

The lab charges `object_cost_ms` (0.02 ms) for every object a cmdlet returns, counting
included: the default variant counts every mailbox of the organisation (~2.3 million at 10,000
databases), which is what dominates its time — as it does, more so, on a real organisation.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

from casdesired.cli import main as cli
from casdesired.lab.dns import LabDnsServer
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.server import Lab, LabCredentials

SEED_DATABASES = 12
VARIANTS = {
    "default": [],
    "no-mailbox-count": ["--no-mailbox-count"],
    "patterns": ["--patterns", "--no-mailbox-count"],
}


def quiet(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli(argv)
    return code, out.getvalue() + err.getvalue()


def run(size: int, latency_ms: int, variant: str, workdir: Path) -> dict[str, float | str]:
    faults, journal = Faults(), Journal()
    organisation = Organisation.from_seed(faults=faults, journal=journal)
    if size > SEED_DATABASES:
        organisation.add_databases(size - SEED_DATABASES, "HQ", "HQ-BENCH-")
    creds = LabCredentials()
    with (
        Lab(organisation, auth="ntlm", credentials=creds, faults=faults, journal=journal) as lab,
        LabDnsServer(organisation) as dns_server,
    ):
        os.environ["CASDESIRED_USERNAME"] = creds.username
        os.environ["CASDESIRED_PASSWORD"] = creds.password
        directory = workdir / f"org-{size}-{latency_ms}-{variant}"
        argv = [
            "import", str(directory), "--name", "contoso", "--endpoint", lab.url,
            "--username-env", "CASDESIRED_USERNAME", "--password-env", "CASDESIRED_PASSWORD",
            "--resolver", dns_server.address, *VARIANTS[variant],
        ]
        faults.update({"latency_ms": latency_ms})
        journal.clear()
        started = time.perf_counter()
        code, output = quiet(argv)
        seconds = time.perf_counter() - started
        if code != 0:
            raise SystemExit(output)
        executions, http, wsman = (journal.count(k) for k in ("command", "http", "wsman"))
        started = time.perf_counter()
        code, output = quiet(["plan", str(directory), "--detailed-exitcode"])
        plan_seconds = time.perf_counter() - started
        if code != 0:
            raise SystemExit(f"the first plan is not empty (exit {code}):\n{output}")
        files = sum(p.stat().st_size for p in directory.glob("*.yaml"))
        return {
            "databases": size,
            "latency_ms": latency_ms,
            "variant": variant,
            "executions": executions,
            "http": http,
            "wsman": wsman,
            "import_s": seconds,
            "plan_s": plan_seconds,
            "yaml_kib": files / 1024,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="12,10000")
    parser.add_argument("--latency", default="0,25")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    print(
        f"{'dbs':>6} {'lat ms':>6} {'variant':>16} {'cmds':>4} {'http':>5} {'wsman':>5} "
        f"{'import s':>8} {'plan s':>7} {'YAML KiB':>8}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            for latency in (int(s) for s in args.latency.split(",")):
                for variant in args.variants.split(","):
                    r = run(size, latency, variant, Path(tmp))
                    print(
                        f"{r['databases']:>6} {r['latency_ms']:>6} {r['variant']:>16} "
                        f"{r['executions']:>4} {r['http']:>5} {r['wsman']:>5} "
                        f"{r['import_s']:>8.2f} {r['plan_s']:>7.2f} {r['yaml_kib']:>8.0f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()

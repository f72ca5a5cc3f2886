"""``casdesired doctor [DIR]``: check, read-only, every assumption casdesired makes on the hosts.

Connects as ``plan`` would, runs the agent once (a diagnose request: read commands only, no
lock) and prints a checklist: each check PASS, WARN, FAIL or SKIPPED, what it saw, and for a
WARN or a FAIL what to change. Exit 0 when nothing FAILs, 1 otherwise (exit codes:
:data:`casdesired.cli.exitcodes.TABLE`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from casdesired.cli import exitcodes
from casdesired.cli.formats import FORMATS
from casdesired.cli.plan import progress_reporter

DEFAULT_DIRECTORY = "sites/"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check every assumption casdesired makes on your hosts (changes nothing)",
        description=(
            "Connect as plan would and check, read-only, everything casdesired relies on: the "
            "connection, the host's PowerShell, WinRM's quotas, the Exchange session and the "
            "account's permissions, NLB, the lock, DNS, static RPC ports and the clock. Each "
            "check is PASS, WARN, FAIL or SKIPPED, with what it saw and what to change. One "
            "command execution on the endpoint; nothing is written anywhere "
            "(docs/first-contact.md)."
        ),
    )
    parser.add_argument(
        "directory",
        nargs="?",
        default=DEFAULT_DIRECTORY,
        metavar="DIR",
        help=f"the organisation's directory (default: {DEFAULT_DIRECTORY})",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text for terminals (default), json (schemas/doctor.schema.json), markdown",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at parser build: `casdesired --help` stays fast (bench/startup_bench.py).
    from casdesired.desired.loader import load_desired
    from casdesired.doctor import diagnose
    from casdesired.doctor.render import RENDERERS
    from casdesired.findings import Severity

    desired = load_desired(Path(args.directory))
    if desired.has_errors():
        for diagnostic in desired.diagnostics:
            if diagnostic.severity is Severity.ERROR:
                print(diagnostic, file=sys.stderr)
        print(
            "casdesired: the desired state has errors (see `casdesired validate`); doctor needs "
            "a valid organisation file to connect",
            file=sys.stderr,
        )
        return exitcodes.ERROR
    with progress_reporter(sys.stderr) as progress:
        report = diagnose(desired, os.environ, progress=progress)
    RENDERERS[args.format]().render(report, sys.stdout)
    return exitcodes.ERROR if report.failed else exitcodes.SUCCESS

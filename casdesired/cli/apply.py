"""``casdesired apply [DIR | PLANFILE]``: make exactly the planned changes, safely, and verify.

With DIR it plans now (under the organisation lock), shows the plan and asks for "yes" on a
terminal. With PLANFILE (from ``casdesired plan --out``) it applies exactly that plan, after
checking it is not stale and was never applied; the organisation file (connection, policy)
comes from ``--config DIR``. See docs/apply.md.

Exit codes: :data:`casdesired.cli.exitcodes.TABLE` (``casdesired apply --help`` lists them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from casdesired.apply.audit import DEFAULT_AUDIT_LOG
from casdesired.cli.parser import number

DEFAULT_DIRECTORY = "sites/"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "apply",
        help="make the planned changes in the live organisation, safely, and verify them",
        description=(
            "Take the organisation lock, re-read the live organisation, run every safety "
            "check, then make exactly the planned changes in order and verify them. Writes "
            "an audit log entry and a rollback plan."
        ),
    )
    parser.add_argument(
        "target",
        nargs="?",
        default=DEFAULT_DIRECTORY,
        metavar="DIR|PLANFILE",
        help=f"an organisation directory (plan now) or a saved plan (default: {DEFAULT_DIRECTORY})",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(DEFAULT_DIRECTORY),
        metavar="DIR",
        help="with a PLANFILE: the organisation directory naming the endpoint and policy "
        f"(default: {DEFAULT_DIRECTORY})",
    )
    parser.add_argument(
        "--auto-approve", action="store_true", help="apply without asking (for pipelines)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help=(
            "allow what the safety checks refuse: the policy's thresholds (mass rebinding, "
            "any delete) and the DNS gate (an array name not resolving to its VIP)"
        ),
    )
    parser.add_argument(
        "--lock-timeout",
        type=number(minimum=0, maximum=86400, unit=" seconds"),
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another apply's lock, 0 to 86400 (default: 0, refuse at once)",
    )
    parser.add_argument(
        "--site",
        action="append",
        dest="sites",
        metavar="NAME",
        help="limit a plan made now to this site (repeatable)",
    )
    parser.add_argument(
        "--audit-log",
        type=Path,
        default=DEFAULT_AUDIT_LOG,
        metavar="PATH",
        help=f"JSON-lines audit log to append to (default: ./{DEFAULT_AUDIT_LOG})",
    )
    parser.add_argument(
        "--rollback-out",
        type=Path,
        metavar="PATH",
        help="where to write the rollback plan (default: next to the audit log)",
    )
    parser.set_defaults(func=run)


def _ask(prompt: str) -> str:
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = sys.stdin.readline()
    return line


def run(args: argparse.Namespace) -> int:
    # Imported here, not at parser build: `casdesired --help` stays fast (bench/startup_bench.py).
    from casdesired.apply.run import ApplyOptions, apply
    from casdesired.desired.loader import load_desired
    from casdesired.errors import ConfigError
    from casdesired.findings import Severity
    from casdesired.plan.plan import Plan

    target = Path(args.target)
    saved: Plan | None = None
    directory = target
    if target.is_file():
        saved = Plan.load(target)
        directory = args.config
        if args.sites:
            raise ConfigError("--site limits a plan made now; a saved plan keeps its own sites")
        if not directory.is_dir():
            raise ConfigError(
                f"{directory}: no such organisation directory: applying the plan file {target} "
                "needs the organisation directory it was made from (--config DIR)"
            )
    desired = load_desired(directory)
    if desired.has_errors():
        for diagnostic in desired.diagnostics:
            if diagnostic.severity is Severity.ERROR:
                print(diagnostic, file=sys.stderr)
        print("casdesired: the desired state has errors (see `casdesired validate`); nothing "
              "was applied", file=sys.stderr)
        return 1
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    options = ApplyOptions(
        auto_approve=args.auto_approve,
        force=args.force,
        lock_timeout=args.lock_timeout,
        sites=args.sites,
        audit_log=args.audit_log,
        rollback_out=args.rollback_out,
        ask=_ask if interactive else None,
    )
    return apply(desired, saved, options, sys.stdout, sys.stderr)

"""``casdesired apply [DIR | PLANFILE]``: make exactly the planned changes, safely, and verify.

With DIR it plans now (under the organisation lock), shows the plan and asks for "yes" on a
terminal. With PLANFILE (from ``casdesired plan --out``) it applies exactly that plan, after
checking it is not stale and was never applied; the organisation file (connection, policy)
comes from ``--config DIR``. See docs/apply.md.

Exit codes: :data:`casdesired.cli.exitcodes.TABLE` (``casdesired apply --help`` lists them).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from casdesired.apply.audit import DEFAULT_AUDIT_LOG
from casdesired.cli.parser import number

if TYPE_CHECKING:
    from casdesired.apply.record import ApplyRecord

DEFAULT_DIRECTORY = "sites/"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "apply",
        help="make the planned changes in the live organisation, safely, and verify them",
        description=(
            "Take the organisation lock, re-read the live organisation, run every safety "
            "check, then make exactly the planned changes in order and verify them. Writes "
            "an audit log entry and a rollback plan. Changes a blocking finding withholds are "
            "never made: the other sites' changes are, and apply then lists the withheld "
            "sites and exits 1."
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
        "--format",
        choices=("text", "json"),
        default="text",
        help=(
            "text (default), or json: the end report as one JSON document on stdout "
            "(schemas/apply-report.schema.json), the plan and the text report on stderr"
        ),
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


def _asker(stream: TextIO) -> Callable[[str], str]:
    def ask(prompt: str) -> str:
        stream.write(prompt)
        stream.flush()
        return sys.stdin.readline()

    return ask


def run(args: argparse.Namespace) -> int:
    # Imported here, not at parser build: `casdesired --help` stays fast (bench/startup_bench.py).
    from casdesired.apply.record import ApplyRecord, document
    from casdesired.cli import exitcodes
    from casdesired.errors import CasdesiredError, PlanRefused

    record = ApplyRecord()
    # With --format json, stdout holds the one JSON document; the rest goes to stderr.
    out = sys.stderr if args.format == "json" else sys.stdout
    try:
        record.exit_code = _run(args, record, out)
    except CasdesiredError as exc:
        record.error, record.exit_code = str(exc), exc.exit_code
        record.refused = isinstance(exc, PlanRefused)
        raise
    except KeyboardInterrupt:
        record.error, record.exit_code = "interrupted", exitcodes.INTERRUPTED
        raise
    finally:
        if args.format == "json":
            print(json.dumps(document(record), indent=2, ensure_ascii=False), flush=True)
    return record.exit_code


def _run(args: argparse.Namespace, record: ApplyRecord, out: TextIO) -> int:
    from casdesired.apply.run import ApplyOptions, apply
    from casdesired.cli.progress import apply_progress
    from casdesired.desired.loader import load_desired
    from casdesired.errors import ConfigError
    from casdesired.findings import Severity
    from casdesired.plan.plan import Plan

    target = Path(args.target)
    saved: Plan | None = None
    directory = target
    if target.is_file():
        saved = Plan.load(target)
        record.plan = saved
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
        record.error = ("the desired state has errors (see `casdesired validate`); nothing "
                        "was applied")
        print(f"casdesired: {record.error}", file=sys.stderr)
        return 1
    interactive = sys.stdin.isatty() and out.isatty()
    with apply_progress(sys.stderr) as progress:
        options = ApplyOptions(
            auto_approve=args.auto_approve,
            force=args.force,
            lock_timeout=args.lock_timeout,
            sites=args.sites,
            audit_log=args.audit_log,
            rollback_out=args.rollback_out,
            ask=_asker(out) if interactive else None,
            progress=progress,
            record=record,
        )
        return apply(desired, saved, options, out, sys.stderr)

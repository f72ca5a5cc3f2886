"""``casdesired drift [DIR]``: what in the live organisation no longer matches git, and who changed
it, when, and with which cmdlet (Exchange 2010 SP1's admin audit log).

One read, the plan's (with the audit search in the same request), the plan's diff, then each
drifted object's attribution. Nothing is written to Exchange. Exit codes for schedulers: 0 no
drift, 2 drift, 1 error (:data:`casdesired.cli.exitcodes.TABLE`); docs/drift.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from casdesired.apply.audit import DEFAULT_AUDIT_LOG
from casdesired.cli.parser import number
from casdesired.cli.plan import DEFAULT_DIRECTORY
from casdesired.drift.sources import DEFAULT_RESULT_SIZE, MAX_RESULT_SIZE

FORMATS = ("text", "json", "markdown")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "drift",
        help="show what no longer matches git, and who changed it (changes nothing)",
        description=(
            "Read the live Exchange 2010 organisation once, with its admin audit log, compare it "
            "with the desired state, and report every object that drifted: what git says, what "
            "Exchange says, and who changed it, when and with which cmdlet. casdesired's own "
            "applies are recognised and never reported as drift. Nothing is changed."
        ),
    )
    parser.add_argument(
        "directory", nargs="?", default=DEFAULT_DIRECTORY, metavar="DIR",
        help=f"the organisation's directory (default: {DEFAULT_DIRECTORY})",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="text",
        help="text for terminals (default), json (schemas/drift.schema.json), markdown for an "
        "issue body",
    )
    parser.add_argument(
        "--site", action="append", dest="sites", metavar="NAME",
        help="limit the comparison to this site (repeatable)",
    )
    parser.add_argument(
        "--since", metavar="WHEN",
        help="search the audit log from this date (2024-05-01), UTC time "
        "(2024-05-01T08:00:00Z) or span back (7d, 12h); default: the start of the last "
        "successful apply in --audit-log, else 90 days (the log's default age limit)",
    )
    parser.add_argument(
        "--audit-log", type=Path, default=DEFAULT_AUDIT_LOG, metavar="PATH",
        help=f"casdesired's own audit log, as apply writes it (default: {DEFAULT_AUDIT_LOG})",
    )
    parser.add_argument(
        "--apply-account", action="append", default=[], metavar="NAME",
        help="another account casdesired applies as, as the audit log names it (repeatable; "
        "the connection's user name always counts)",
    )
    parser.add_argument(
        "--audit-results", type=number(minimum=1, maximum=MAX_RESULT_SIZE, whole=True),
        default=DEFAULT_RESULT_SIZE, metavar="N",
        help=f"read at most N audit entries, the newest (default: {DEFAULT_RESULT_SIZE:,}; at "
        f"most {MAX_RESULT_SIZE:,})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at parser build: `casdesired --help` stays fast (bench/startup_bench.py).
    from casdesired.cli.plan import progress_reporter
    from casdesired.desired.loader import load_desired
    from casdesired.drift.markdown import MarkdownRenderer
    from casdesired.drift.render import JsonRenderer, TextRenderer
    from casdesired.drift.run import drift, parse_since
    from casdesired.findings import Severity
    from casdesired.plan.build import connect

    renderers = {"text": TextRenderer, "json": JsonRenderer, "markdown": MarkdownRenderer}
    now = datetime.now(timezone.utc)
    since = None
    if args.since is not None:
        try:
            since = parse_since(args.since, now)
        except ValueError as exc:
            args._parser.error(f"argument --since: {exc}")
    desired = load_desired(Path(args.directory))
    if desired.has_errors():
        for diagnostic in desired.diagnostics:
            if diagnostic.severity is Severity.ERROR:
                print(diagnostic, file=sys.stderr)
        print(
            "casdesired: the desired state has errors (see `casdesired validate`); nothing "
            "compared",
            file=sys.stderr,
        )
        return 1
    with (
        progress_reporter(sys.stderr) as progress,
        connect(desired.organisation, os.environ) as client,
    ):
        progress(f"connecting to {desired.organisation.connection.endpoint}")
        report = drift(
            desired,
            client,
            now=now,
            sites=args.sites,
            since=since,
            audit_log=args.audit_log,
            apply_accounts=args.apply_account,
            result_size=int(args.audit_results),
            progress=progress,
        )
    renderers[args.format]().render(report, sys.stdout)
    return report.exit_code

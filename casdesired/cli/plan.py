"""``casdesired plan [DIR]``: show what would change in the live organisation, and whom it affects.

Reads the live organisation once, compares it with the desired state and renders the plan as
text, JSON or Markdown. ``--out FILE`` saves it for ``casdesired apply``. Nothing is written to
Exchange.

Exit codes: :data:`casdesired.cli.exitcodes.TABLE` (``casdesired plan --help`` lists them);
with ``--detailed-exitcode`` 2 means changes present, which no error ever exits with.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from casdesired.cli import exitcodes
from casdesired.cli.formats import (
    add_format_option,
    add_markdown_options,
    check_markdown_options,
    render,
)

DEFAULT_DIRECTORY = "sites/"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="show what would change in the live organisation (changes nothing)",
        description=(
            "Read the live Exchange 2010 organisation, compare it with the desired state and "
            "show the changes that would make them match, in the order they would run, with "
            "the mailboxes each affects. Nothing is changed."
        ),
    )
    parser.add_argument(
        "directory",
        nargs="?",
        default=DEFAULT_DIRECTORY,
        metavar="DIR",
        help=f"the organisation's directory (default: {DEFAULT_DIRECTORY})",
    )
    add_format_option(parser)
    parser.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when there are no changes, 2 when there are, 1 on error",
    )
    parser.add_argument(
        "--site",
        action="append",
        dest="sites",
        metavar="NAME",
        help="limit the plan to this site (repeatable)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="also save the plan (with the live fingerprint and desired digest) for apply",
    )
    add_markdown_options(parser, link_default="the --out FILE's name")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at parser build: `casdesired --help` stays fast (bench/startup_bench.py).
    from casdesired.desired.loader import load_desired
    from casdesired.findings import Severity
    from casdesired.plan.build import connect, make_plan

    check_markdown_options(args)  # before anything is read: a usage error costs nothing
    desired = load_desired(Path(args.directory))
    if desired.has_errors():
        for diagnostic in desired.diagnostics:
            if diagnostic.severity is Severity.ERROR:
                print(diagnostic, file=sys.stderr)
        print(
            "casdesired: the desired state has errors (see `casdesired validate`); no plan made",
            file=sys.stderr,
        )
        return 1
    with (
        progress_reporter(sys.stderr) as progress,
        connect(desired.organisation, os.environ) as client,
    ):
        progress(f"connecting to {desired.organisation.connection.endpoint}")
        result = make_plan(desired, client, sites=args.sites, progress=progress)
    plan = result.plan
    if args.out is not None:
        plan.save(args.out)
    full_plan = args.full_plan_link or (args.out.name if args.out is not None else None)
    render(plan, args.format, sys.stdout, max_bytes=args.max_bytes, full_plan=full_plan)
    if args.out is not None:
        print(f"casdesired: plan saved to {args.out}", file=sys.stderr)
    if plan.dns_blocking_apply:
        print(
            f"casdesired: {len(plan.dns_blocking_apply)} DNS finding(s) block apply "
            "(fix DNS, or apply with --force)",
            file=sys.stderr,
        )
    blocking = plan.blocking_findings
    if blocking:
        print(
            f"casdesired: {len(blocking)} blocking finding(s); "
            f"{len(plan.withheld)} change(s) withheld until they are fixed",
            file=sys.stderr,
        )
        return 1
    if args.detailed_exitcode and plan.has_changes:
        return exitcodes.CHANGES_PRESENT
    return exitcodes.SUCCESS


@contextmanager
def progress_reporter(stream: TextIO) -> Iterator[Callable[[str], None]]:
    """A spinner with the current step on a terminal; silent when ``stream`` is not one."""
    if not (hasattr(stream, "isatty") and stream.isatty()):
        yield lambda _message: None
        return
    from rich.console import Console
    from rich.live import Live
    from rich.spinner import Spinner

    console = Console(file=stream, highlight=False, markup=False)
    spinner = Spinner("dots", text="reading the live organisation")
    with Live(spinner, console=console, transient=True, refresh_per_second=12.5) as live:

        def show(message: str) -> None:
            # Drawn at once, not at the next tick: a fast step is still seen on the terminal.
            spinner.update(text=message)
            live.refresh()

        yield show

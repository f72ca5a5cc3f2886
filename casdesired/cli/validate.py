"""``casdesired validate [DIR]``: report every problem in a desired-state directory.

Offline: reads only the YAML (schemas plus the rules across files). Exit 0 when clean (warnings
allowed), 1 on any error — or on any warning with ``--strict``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from casdesired.desired.config import DesiredState
    from casdesired.findings import Finding

DEFAULT_DIRECTORY = "sites/"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check the desired-state YAML and report every problem",
        description=(
            "Check a desired-state directory (one organisation) against the schemas and the "
            "rules across files. Prints path:line:column: error|warning: message."
        ),
    )
    parser.add_argument(
        "directory",
        nargs="?",
        default=DEFAULT_DIRECTORY,
        metavar="DIR",
        help=f"the organisation's directory (default: {DEFAULT_DIRECTORY})",
    )
    parser.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text (default) or a JSON document for machines",
    )
    # Checks that need the network (DNS: `--online`) hook in here, after the offline ones.
    parser.add_argument(
        "--online",
        action="store_true",
        help=(
            "also ask the organisation's DNS resolvers: each array FQDN resolves to exactly its "
            "VIP (and not externally), each CAS server resolves"
        ),
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at parser build: `casdesired --help` stays fast (bench/startup_bench.py).
    from casdesired.desired.loader import load_desired
    from casdesired.findings import Severity

    desired = load_desired(Path(args.directory))
    diagnostics = list(desired.diagnostics)
    if getattr(args, "online", False):
        diagnostics += _online(desired)
    errors = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
    warnings = len(diagnostics) - errors
    failed = errors > 0 or (args.strict and warnings > 0)
    if args.format == "json":
        print(json.dumps(_document(desired, diagnostics, errors, warnings, failed), indent=2))
    else:
        for diagnostic in diagnostics:
            print(diagnostic)
    print(_summary(desired, errors, warnings, strict=args.strict), file=sys.stderr)
    return 1 if failed else 0


def _online(desired: DesiredState) -> list[Finding]:
    """The DNS checks, unless the offline ones failed (then the settings may be partial)."""
    from casdesired.dns.desired import check_desired, located, resolvers_for

    if desired.has_errors():
        print("casdesired: online checks skipped: fix the errors above first", file=sys.stderr)
        return []
    org = desired.organisation
    if not org.dns.resolvers and not org.dns.external_resolvers:
        print("casdesired: online checks: no dns.resolvers configured, nothing to ask",
              file=sys.stderr)
        return []
    with resolvers_for(org) as resolvers:
        return located(check_desired(desired, resolvers), org)


def _summary(desired: DesiredState, errors: int, warnings: int, *, strict: bool) -> str:
    files = len(desired.files)
    text = (
        f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')} "
        f"in {_plural(files, 'file')} ({desired.organisation.name})"
    )
    if strict and warnings and not errors:
        text += "; --strict: warnings fail"
    return text


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _document(
    desired: DesiredState,
    diagnostics: list[Finding],
    errors: int,
    warnings: int,
    failed: bool,
) -> dict[str, object]:
    return {
        "version": 1,
        "organisation": desired.organisation.name,
        "ok": not failed,
        "counts": {"errors": errors, "warnings": warnings, "files": len(desired.files)},
        "digest": desired.digest(),
        "diagnostics": [d.to_dict() for d in diagnostics],
    }

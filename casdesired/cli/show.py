"""``casdesired show PLANFILE``: render a saved plan offline — no connection, no lock.

The pull-request comment can then be made from the very file that will be applied: ``show
--format markdown`` of a plan file is the comment ``plan --format markdown`` wrote when the file
was saved. The file is loaded as ``apply`` loads it (schema, checksum, invocations), so a file
``show`` accepts is one ``apply`` would read; whether it is stale is only known under the lock.

Exit codes: :data:`casdesired.cli.exitcodes.TABLE` (``casdesired show --help`` lists them).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from casdesired.cli.formats import (
    add_format_option,
    add_markdown_options,
    check_markdown_options,
    render,
)

if TYPE_CHECKING:
    from casdesired.plan.plan import Plan


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "show",
        help="render a saved plan file, offline (no connection, no lock)",
        description=(
            "Render a plan saved with `casdesired plan --out` as text, JSON or Markdown, "
            "without connecting to Exchange or taking the lock: the review comment made from "
            "the very file `casdesired apply PLANFILE` will apply. The file is checked as "
            "apply checks it (schema, checksum); whether it is stale is known only at apply."
        ),
    )
    parser.add_argument("planfile", type=Path, metavar="PLANFILE",
                        help="a plan saved with `casdesired plan --out`")
    add_format_option(parser)
    add_markdown_options(parser, link_default="the PLANFILE's name")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from casdesired.plan.plan import Plan

    check_markdown_options(args)
    plan = Plan.load(args.planfile)
    plan = replace(plan, root=organisation_root(plan))
    full_plan = args.full_plan_link or args.planfile.name
    render(plan, args.format, sys.stdout, max_bytes=args.max_bytes, full_plan=full_plan)
    return 0


def organisation_root(plan: Plan) -> str | None:
    """The organisation directory the plan was made from, as the plan's own locations show it.

    Not saved (it is the planning runner's path), but every finding's location is a desired
    file's path under it, and ``desired_files`` names those files relative to it: so YAML
    locations in the Markdown are shown relative to it, as ``plan`` showed them."""
    names = sorted(plan.desired_files or {}, key=len, reverse=True)
    for finding in plan.findings:
        if finding.location is None:
            continue
        path = PurePath(finding.location.path)
        for name in names:
            parts = PurePath(name).parts
            if len(path.parts) > len(parts) and path.parts[-len(parts):] == parts:
                return str(PurePath(*path.parts[: -len(parts)]))
    return None

"""How a plan is shown: the output options ``plan`` and ``show`` share, and the rendering.

Parser definitions only at import (the renderers are imported when a plan is rendered), so
building the parser for ``--help`` or ``--version`` imports no renderer.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TextIO

from casdesired.plan.markdown_fit import DEFAULT_MAX_BYTES

if TYPE_CHECKING:
    from casdesired.plan.plan import Plan

FORMATS: tuple[str, ...] = ("text", "json", "markdown")


def add_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text for terminals (default), json (schemas/plan.schema.json), markdown for PRs",
    )


def add_markdown_options(parser: argparse.ArgumentParser, *, link_default: str) -> None:
    parser.add_argument(
        "--max-bytes",
        type=_positive,
        metavar="N",
        help=(
            f"with --format markdown only (a usage error with text or json, which are never "
            f"shortened): keep the comment within N bytes (default: {DEFAULT_MAX_BYTES}, under "
            "GitHub's comment limit) by shortening the per-site details; the verdict, the "
            "summary and the safety decisions are always kept"
        ),
    )
    parser.add_argument(
        "--full-plan-link",
        metavar="TEXT",
        help=(
            "markdown: where reviewers find the full plan, e.g. the CI artifact's URL "
            f"(default: {link_default})"
        ),
    )


def check_markdown_options(args: argparse.Namespace) -> None:
    """Refuse, as a usage error, ``--max-bytes`` with a format it does not shorten.

    A pipeline that asks for a size limit must never get a larger output than it asked for
    without a word: text and JSON are never shortened (JSON would no longer be the plan)."""
    if args.max_bytes is not None and args.format != "markdown":
        args._parser.error(
            f"--max-bytes applies to --format markdown only; --format {args.format} is never "
            "shortened (drop --max-bytes, or add --format markdown)"
        )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a positive number of bytes: {text!r}")
    return value


def render(
    plan: Plan,
    fmt: str,
    out: TextIO,
    *,
    max_bytes: int | None = None,
    full_plan: str | None = None,
) -> None:
    """``plan`` in ``fmt`` (one of :data:`FORMATS`) on ``out``; ``max_bytes`` (markdown only)
    None is the default limit."""
    if fmt == "markdown":
        from casdesired.plan.render_markdown import MarkdownRenderer

        limit = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
        MarkdownRenderer(max_bytes=limit, full_plan=full_plan).render(plan, out)
    elif fmt == "json":
        from casdesired.plan.render_json import JsonRenderer

        JsonRenderer().render(plan, out)
    else:
        from casdesired.plan.render_text import TextRenderer

        TextRenderer().render(plan, out)

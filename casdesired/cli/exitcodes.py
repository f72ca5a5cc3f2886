"""Every command's exit codes, in one table: each ``--help`` ends with its rows.

docs/exit-codes.md holds the same table (a test compares the two). A usage error (an unknown
option, a bad value, no command) exits 1 like any other error: 2 is what
``plan --detailed-exitcode`` answers for "changes present", so a typo in a pipeline must never
look like a plan with changes.
"""

from __future__ import annotations

import textwrap

SUCCESS = 0
ERROR = 1
USAGE = ERROR
"""Usage errors share the code of every other error, never 2 (see the module's docstring)."""
CHANGES_PRESENT = 2
INTERRUPTED = 130
"""128 + SIGINT, as a shell reports a command stopped with Ctrl-C."""
TERMINATED = 143
"""128 + SIGTERM."""

_USAGE_WORDS = "a usage error (unknown option, bad value)"
_CTRL_C = "interrupted with Ctrl-C"

TABLE: dict[str, tuple[tuple[int, str], ...]] = {
    "casdesired": (
        (SUCCESS, "--help or --version"),
        (USAGE, f"no command given, or {_USAGE_WORDS}"),
    ),
    "import": (
        (SUCCESS, "the files were written (or printed, with --dry-run)"),
        (
            ERROR,
            "connection or read failure, invalid connection options or organisation file, "
            "existing files that would change (without --force), or " + _USAGE_WORDS,
        ),
        (INTERRUPTED, _CTRL_C),
    ),
    "validate": (
        (SUCCESS, "no errors (warnings allowed, unless --strict)"),
        (ERROR, f"errors found (or warnings, with --strict), nothing to load, or {_USAGE_WORDS}"),
        (INTERRUPTED, _CTRL_C),
    ),
    "doctor": (
        (SUCCESS, "no check failed (warnings and skipped checks allowed)"),
        (ERROR, f"a check failed, the desired state has errors, or {_USAGE_WORDS}"),
        (INTERRUPTED, _CTRL_C),
    ),
    "plan": (
        (SUCCESS, "plan made; with --detailed-exitcode: plan made and it has no changes"),
        (
            ERROR,
            "invalid desired state, connection or read failure, a blocking finding, or "
            + _USAGE_WORDS,
        ),
        (CHANGES_PRESENT, "only with --detailed-exitcode: plan made and it has changes"),
        (INTERRUPTED, _CTRL_C),
    ),
    "show": (
        (SUCCESS, "the plan file was shown"),
        (
            ERROR,
            "the file cannot be read, is not a plan, or was modified after it was saved, or "
            + _USAGE_WORDS,
        ),
        (INTERRUPTED, _CTRL_C),
    ),
    "apply": (
        (SUCCESS, "every change applied and verified, or nothing to do; nothing withheld"),
        (
            ERROR,
            "refused before any change, failed part-way, not verified, or a blocking finding "
            "withheld a site's changes (the other sites' changes were applied; the report says "
            f"which), or {_USAGE_WORDS}",
        ),
        (INTERRUPTED, f"{_CTRL_C} (SIGINT), after releasing the lock"),
        (TERMINATED, "terminated by SIGTERM, after releasing the lock"),
    ),
    "drift": (
        (SUCCESS, "no drift: the organisation matches git (changes not applied yet allowed)"),
        (
            ERROR,
            "invalid desired state, connection or read failure, or " + _USAGE_WORDS,
        ),
        (CHANGES_PRESENT, "drift: an object changed outside git, or a blocking finding"),
        (INTERRUPTED, _CTRL_C),
    ),
    "unlock": (
        (SUCCESS, "the lock was removed, or shown (none held is 0 too)"),
        (ERROR, f"invalid desired state, unreachable endpoint, no such lock, or {_USAGE_WORDS}"),
        (INTERRUPTED, _CTRL_C),
    ),
    "lab serve": (
        (SUCCESS, "served until stopped with Ctrl-C or SIGTERM"),
        (ERROR, f"could not listen or load the state file, or {_USAGE_WORDS}"),
    ),
    "lab reset": (
        (SUCCESS, "the lab's state file was reset to its seed"),
        (
            ERROR,
            "no such directory, not a lab organisation, the state file could not be written, "
            f"or {_USAGE_WORDS}",
        ),
        (INTERRUPTED, _CTRL_C),
    ),
    "completion": (
        (SUCCESS, "the completion script was printed"),
        (USAGE, f"{_USAGE_WORDS}, e.g. a shell other than bash, zsh or fish"),
    ),
}
"""Command (as typed after ``casdesired``; the bare program is ``casdesired``) → its codes."""

HEADING = "exit codes:"


def render(command: str, width: int = 79) -> str:
    """The ``exit codes:`` section of ``command``'s --help, one code per entry."""
    lines = [HEADING]
    for code, meaning in TABLE[command]:
        lines += textwrap.wrap(
            meaning,
            width=width,
            initial_indent=f"  {code:<5}",
            subsequent_indent=" " * 7,
        )
    return "\n".join(lines) + "\n"

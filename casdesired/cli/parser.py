"""The argument parser every command uses: usage errors exit 1, --help ends with the exit codes.

argparse exits 2 on a usage error, the code ``plan --detailed-exitcode`` answers for "changes
present"; :meth:`CommandParser.error` exits :data:`~casdesired.cli.exitcodes.USAGE` instead.
Subparsers are made by ``add_parser``, which builds them with the parent's class, so every
command's parser is a :class:`CommandParser`. The argument types here refuse, as usage errors,
numbers an option cannot mean (``--lock-timeout nan``, ``--port 99999``).
"""

from __future__ import annotations

import argparse
import difflib
import math
import sys
from collections.abc import Callable, Iterator
from typing import NoReturn

from casdesired.cli import exitcodes


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors exit 1 and whose help lists its exit codes."""

    exit_codes: str | None = None
    """The command's key in :data:`exitcodes.TABLE`; set once the parser tree is built."""

    def format_help(self) -> str:
        text = super().format_help()
        if self.exit_codes is None:
            return text
        return text + "\n" + exitcodes.render(self.exit_codes)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(exitcodes.USAGE, f"{self.prog}: error: {message}\n")

    def unrecognized(self, extras: list[str]) -> NoReturn:
        """Refuse arguments no option takes, suggesting the option meant (``--formt``)."""
        message = f"unrecognized arguments: {' '.join(extras)}"
        options = [o for action in self._actions for o in action.option_strings]
        for extra in extras:
            close = difflib.get_close_matches(extra.split("=", 1)[0], options, n=1, cutoff=0.7)
            if extra.startswith("-") and close:
                message += f" (did you mean {close[0]}?)"
                break
        self.error(message)


def commands(
    parser: argparse.ArgumentParser, path: str = ""
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(command as typed, parser) for ``parser`` and every subcommand below it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from commands(child, f"{path} {name}".strip())


def number(
    *, minimum: float, maximum: float, whole: bool = False, unit: str = ""
) -> Callable[[str], float]:
    """An argparse ``type``: a finite number within [minimum, maximum]."""

    def parse(text: str) -> float:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not math.isfinite(value) or not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"{text!r} is out of range: give {minimum:g} to {maximum:g}{unit}"
            )
        return value

    return parse

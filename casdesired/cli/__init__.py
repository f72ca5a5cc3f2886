"""The ``casdesired`` command line: one module per subcommand, each with ``register()``.

A subcommand module defines ``register(subparsers)`` which adds its parser and sets
``func=run`` where ``run(args) -> int`` returns the exit code. Errors the user can act on are
``CasdesiredError``: printed as one message on stderr, never as a traceback. Exit codes are
:mod:`casdesired.cli.exitcodes`'s table, which every command's ``--help`` ends with.
"""

from __future__ import annotations

import importlib
import keyword
import os
import sys
from collections.abc import Sequence

from casdesired import __version__
from casdesired.cli import exitcodes
from casdesired.cli.parser import CommandParser, commands
from casdesired.errors import CasdesiredError
from casdesired.visible import clean_lines

# Order is the order `casdesired --help` lists them.
SUBCOMMANDS: tuple[str, ...] = (
    "import", "validate", "doctor", "plan", "show", "apply", "drift", "unlock", "lab",
    "completion",
)


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="casdesired",
        description=(
            "Declarative reconciler for Exchange 2010 Client Access Server arrays: "
            "validate YAML, plan against the live organisation, apply safely."
        ),
    )
    parser.add_argument("--version", action="version", version=f"casdesired {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        # A command named like a Python keyword lives in ``<name>_.py`` (``import_``).
        module_name = f"{name}_" if keyword.iskeyword(name) else name
        module = importlib.import_module(f"casdesired.cli.{module_name}")
        module.register(subparsers)
    for command, sub in commands(parser):
        if not isinstance(sub, CommandParser):
            raise TypeError(f"casdesired {command}: its parser is not a CommandParser")
        name = command or "casdesired"
        if name in exitcodes.TABLE:
            sub.exit_codes = name
        elif sub.get_default("func") is not None:
            raise KeyError(f"casdesired {command}: no row in casdesired.cli.exitcodes.TABLE")
        # The parser that reports an unrecognized argument: the command's, not the program's.
        sub.set_defaults(_parser=sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        args._parser.unrecognized(extras)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return exitcodes.USAGE
    try:
        code: int = args.func(args)
        return code
    except CasdesiredError as exc:
        print(f"casdesired: error: {clean_lines(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("casdesired: interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`casdesired plan | head`): not an error worth a traceback.
        # Point stdout at devnull so the interpreter's final flush cannot raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1

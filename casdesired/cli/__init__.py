"""The ``casdesired`` command line: one module per subcommand, each with ``register()``.

A subcommand module defines ``register(subparsers)`` which adds its parser and sets
``func=run`` where ``run(args) -> int`` returns the exit code. Errors the user can act on are
``CasdesiredError``: printed as one message on stderr, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from casdesired import __version__
from casdesired.errors import CasdesiredError

# Order is the order `casdesired --help` lists them.
SUBCOMMANDS: tuple[str, ...] = ("validate", "plan", "apply", "unlock", "lab")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="casdesired",
        description=(
            "Declarative reconciler for Exchange 2010 Client Access Server arrays: "
            "validate YAML, plan against the live organisation, apply safely."
        ),
    )
    parser.add_argument("--version", action="version", version=f"casdesired {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"casdesired.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = args.func(args)
        return code
    except CasdesiredError as exc:
        print(f"casdesired: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("casdesired: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`casdesired plan | head`): not an error worth a traceback.
        # Point stdout at devnull so the interpreter's final flush cannot raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1

"""``casdesired completion SHELL``: the shell completion script, generated from the parser.

shtab writes it from the same argparse tree ``--help`` is made from, so commands, options and
their choices can never drift from the program. Arguments are completed by what they name:
directories for ``DIR``, files for plan files and paths.
"""

from __future__ import annotations

import argparse
import sys

SHELLS = ("bash", "zsh", "fish")

INSTALL = {
    "bash": "casdesired completion bash > ~/.local/share/bash-completion/completions/casdesired",
    "zsh": "casdesired completion zsh > \"${fpath[1]}/_casdesired\"",
    "fish": "casdesired completion fish > ~/.config/fish/completions/casdesired.fish",
}

DIRECTORY_METAVARS = frozenset({"DIR"})
FILE_METAVARS = frozenset({"PLANFILE", "FILE", "PATH", "DIR|PLANFILE"})


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "completion",
        help="print the shell completion script (bash, zsh or fish)",
        description=(
            "Print the completion script for SHELL, generated from casdesired's own parser. "
            f"Install it, e.g.: {INSTALL['bash']}"
        ),
    )
    parser.add_argument("shell", choices=SHELLS, metavar="SHELL",
                        help="bash, zsh or fish")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shtab

    from casdesired.cli import build_parser
    from casdesired.cli.parser import commands

    parser = build_parser()
    for _name, command in commands(parser):
        for action in command._actions:
            if action.option_strings and action.nargs == 0:
                continue
            if action.metavar in DIRECTORY_METAVARS:
                action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
            elif action.metavar in FILE_METAVARS:
                action.complete = shtab.FILE  # type: ignore[attr-defined]
    sys.stdout.write(shtab.complete(parser, shell=args.shell))
    return 0

"""What cmd.exe does with a WinRS command line, as far as the lab emulates it.

WinRM hands ``command + " " + arguments`` to ``cmd.exe /c``. cmd.exe expands ``%variables%``
from the shell's environment, then the lab knows the builtins used for connectivity probes
(``hostname``, ``echo``), the file builtins and one output redirection of
:mod:`.cmdbuiltins` (what the file delivery writes with), and ``powershell.exe``; PowerShell
scripts go to the :class:`~casdesired.lab.process.PowerShellHost` and are never interpreted
here. Everything else fails exactly as cmd.exe fails, so a typo can never pass for a success.
Both the line as sent and the line after expansion must fit cmd.exe's 8,191 characters.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field

from casdesired.lab.process import HostFiles, ProcessResult
from casdesired.lab.wsman import cmdbuiltins

MAX_COMMAND_LINE = 8191
"""cmd.exe's limit (characters) on one command line."""

TOO_LONG = ProcessResult(stderr="The command line is too long.\r\n", exit_code=1)

_OPERATORS = set("&|<>")


@dataclass(frozen=True)
class Launch:
    """How the lab runs one command line: a finished result, or a PowerShell script."""

    result: ProcessResult | None = None
    """Set when the command completes without reading stdin (builtins, errors)."""
    script: str | None = None
    """The PowerShell script to hand to the host once stdin is complete."""
    script_from_stdin: bool = False
    """``powershell -Command -``: the script itself is the command's stdin."""
    journal: dict[str, str] = field(default_factory=dict)
    """Extra journal fields (the decoded script of ``-EncodedCommand``)."""
    reads_stdin: bool = True
    """False for ``powershell.exe -InputFormat None``: it never reads its stdin."""


def command_line(command: str, arguments: str | None) -> str:
    """The line cmd.exe sees: WinRS joins the command and its arguments with one space."""
    return f"{command} {arguments}" if arguments else command


def split_words(line: str) -> list[str]:
    """Split like CommandLineToArgvW (simplified: quotes group, backslashes stay literal)."""
    words: list[str] = []
    current: list[str] = []
    quoted = in_word = False
    for char in line:
        if char == '"':
            quoted = not quoted
            in_word = True
        elif char in " \t" and not quoted:
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        else:
            current.append(char)
            in_word = True
    if in_word:
        words.append("".join(current))
    return words


def _has_unquoted_operator(line: str) -> bool:
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char in _OPERATORS and not quoted:
            return True
    return False


def not_recognized(name: str) -> ProcessResult:
    return ProcessResult(
        stderr=(
            f"'{name}' is not recognized as an internal or external command,\r\n"
            "operable program or batch file.\r\n"
        ),
        exit_code=1,
    )


def interpret(
    line: str,
    hostname: str,
    environment: Mapping[str, str] | None = None,
    files: HostFiles | None = None,
) -> Launch:
    """Decide what ``cmd.exe /c <line>`` does in the lab, in a shell with ``environment``, on
    a host with ``files``."""
    if len(line) > MAX_COMMAND_LINE:
        return Launch(result=TOO_LONG)
    line = cmdbuiltins.expand(line, environment or {})
    if len(line) > MAX_COMMAND_LINE:
        return Launch(result=TOO_LONG)
    stripped = line.lstrip(" \t")
    words = split_words(stripped)
    if not words:
        return Launch(result=ProcessResult())
    program = words[0].lower().replace("/", "\\").rsplit("\\", 1)[-1]
    if program in ("powershell", "powershell.exe"):
        if _has_unquoted_operator(stripped):
            return Launch(result=_operators_unsupported())
        return _powershell(words[1:], stripped)
    split = cmdbuiltins.split_redirection(stripped)
    if split is None:
        return Launch(result=ProcessResult(stderr=cmdbuiltins.SYNTAX + "\r\n", exit_code=1))
    command, redirection = split
    if _has_unquoted_operator(command):
        return Launch(result=_operators_unsupported())
    if redirection is not None:
        # cmd.exe opens the target first: a folder that does not exist stops the command.
        refused = cmdbuiltins.open_target(redirection, files)
        if refused is not None:
            return Launch(result=refused)
    result = _builtin(command.lstrip(" \t"), hostname, files)
    if redirection is not None:
        result = cmdbuiltins.redirect(result, redirection, files)
    return Launch(result=result)


def _builtin(line: str, hostname: str, files: HostFiles | None) -> ProcessResult:
    words = split_words(line)
    if not words:
        return ProcessResult()
    name = words[0]
    lowered = name.lower()
    if lowered in ("hostname", "hostname.exe"):
        if len(words) > 1:
            return ProcessResult(
                stderr="sethostname: Use the Network Control Panel Applet to set hostname.\r\n",
                exit_code=1,
            )
        return ProcessResult(stdout=f"{hostname}\r\n")
    if lowered == "echo":
        return cmdbuiltins.echo(line[len("echo") :])
    if lowered.startswith("echo."):
        return ProcessResult(stdout=line[len("echo.") :] + "\r\n")
    if lowered in ("mkdir", "md"):
        return cmdbuiltins.mkdir(words[1:], files)
    if lowered == "move":
        return cmdbuiltins.move(words[1:], files)
    if lowered in ("del", "erase"):
        return cmdbuiltins.delete(words[1:], files)
    return not_recognized(name)


def _operators_unsupported() -> ProcessResult:
    # cmd.exe would chain, pipe or read a file; the lab does not emulate that (only one output
    # redirection of a builtin), and says so rather than pretending the line ran.
    return ProcessResult(
        stderr="casdesired lab: cmd.exe operators (& | <, or redirecting powershell.exe) are "
        "not emulated.\r\n",
        exit_code=1,
    )


# powershell.exe parameters that take a value, by full lower-case name. PowerShell accepts any
# unambiguous prefix; -e and -ec are documented aliases of -EncodedCommand.
_PS_VALUED = ("executionpolicy", "inputformat", "outputformat", "windowstyle", "version",
              "configurationname", "psconsolefile", "encodedarguments")
_PS_SWITCHES = ("nologo", "noprofile", "noninteractive", "noexit", "sta", "mta")
_PS_ALL = (*_PS_VALUED, *_PS_SWITCHES, "encodedcommand", "command", "file")


def _ps_parameter(word: str) -> str | None:
    """Full name of a powershell.exe parameter written as ``word`` (``-enc``), or None."""
    if not word.startswith(("-", "/")) or len(word) < 2:
        return None
    typed = word[1:].lower()
    if typed in ("e", "ec"):
        return "encodedcommand"
    matches = [name for name in _PS_ALL if name.startswith(typed)]
    if "encodedcommand" in matches:
        return "encodedcommand"  # powershell.exe resolves -enc/-encoded to EncodedCommand
    return matches[0] if len(matches) == 1 else None


def _powershell(args: list[str], line: str) -> Launch:
    index = 0
    reads_stdin = True
    while index < len(args):
        parameter = _ps_parameter(args[index])
        if parameter == "encodedcommand":
            if index + 1 >= len(args):
                return Launch(result=_ps_usage("-EncodedCommand"))
            return _encoded(args[index + 1], reads_stdin)
        if parameter == "command":
            rest = args[index + 1 :]
            if rest == ["-"]:
                return Launch(script_from_stdin=True)
            return Launch(script=" ".join(rest), journal={"script": " ".join(rest)},
                          reads_stdin=reads_stdin)
        if parameter == "file":
            return Launch(
                result=ProcessResult(
                    stderr="casdesired lab: powershell -File is not emulated.\r\n", exit_code=1
                )
            )
        if parameter == "inputformat" and index + 1 < len(args):
            reads_stdin = args[index + 1].lower() != "none"
        if parameter in _PS_VALUED:
            index += 2
            continue
        if parameter in _PS_SWITCHES:
            index += 1
            continue
        # The first word that is not a parameter starts the command text (as -Command).
        rest = args[index:]
        return Launch(script=" ".join(rest), journal={"script": " ".join(rest)},
                      reads_stdin=reads_stdin)
    # No command at all: an interactive PowerShell reading commands from stdin.
    return Launch(script_from_stdin=True)


def _encoded(value: str, reads_stdin: bool) -> Launch:
    try:
        script = base64.b64decode(value, validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return Launch(
            result=ProcessResult(
                stderr=(
                    "Cannot process the command because the value specified with "
                    "-EncodedCommand is not properly encoded. The value must be Base64 "
                    "encoded.\r\n"
                ),
                exit_code=1,
            )
        )
    return Launch(script=script, journal={"script": script}, reads_stdin=reads_stdin)


def _ps_usage(parameter: str) -> ProcessResult:
    return ProcessResult(
        stderr=f"Missing argument for parameter {parameter}.\r\n", exit_code=1
    )

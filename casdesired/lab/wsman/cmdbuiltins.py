"""cmd.exe's ``%variable%`` expansion, its output redirection and the builtins that touch files.

What the lab emulates (anything else stays refused by :mod:`.cmdexe`):

* ``%NAME%`` expands to the shell's environment variable (names case-insensitive); an
  unknown one stays as written, as in ``cmd /c``;
* one output redirection, anywhere on the line: ``>file`` (create or truncate), ``>>file``
  (append), ``1>``/``2>`` (a handle: a digit right after a blank), ``>nul``. The target is a
  quoted path or a word. Folders must exist: ``The system cannot find the path specified.``;
* ``echo TEXT`` writes TEXT and ``\\r\\n`` (``echo`` alone: ``ECHO is on.``); ``echo.`` a blank
  line;
* ``mkdir``/``md`` PATH (every missing folder above it too: cmd's extensions are on by default);
* ``move [/y] SOURCE TARGET`` (replaces a file; into a folder);
* ``del``/``erase [/q] PATH`` (a missing file: ``Could Not Find PATH`` and exit code 0).

The files are the endpoint host's (:class:`~casdesired.lab.process.HostFiles`, the
organisation's); a lab without files has no folder at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from casdesired.lab.process import HostFileError, HostFiles, ProcessResult

NO_PATH = "The system cannot find the path specified."
NO_FILE = "The system cannot find the file specified."
DENIED = "Access is denied."
SYNTAX = "The syntax of the command is incorrect."
_VARIABLE = re.compile(r"%([^%\r\n]+)%")


def expand(line: str, environment: Mapping[str, str]) -> str:
    """cmd.exe's ``%NAME%`` expansion (``cmd /c``: an unknown name stays as written)."""
    lowered = {k.lower(): v for k, v in environment.items()}

    def value(match: re.Match[str]) -> str:
        return lowered.get(match.group(1).lower(), match.group(0))

    return _VARIABLE.sub(value, line)


@dataclass(frozen=True)
class Redirection:
    handle: int
    """1 (stdout) or 2 (stderr)."""
    target: str
    append: bool


def split_redirection(line: str) -> tuple[str, Redirection | None] | None:
    """(the line without its redirection, the redirection); None when the line has more than
    one, or one without a target (the caller answers as cmd.exe does)."""
    quoted = False
    found: tuple[int, int, Redirection] | None = None
    index = 0
    while index < len(line):
        char = line[index]
        if char == '"':
            quoted = not quoted
        elif char == ">" and not quoted:
            if found is not None:
                return None
            start, handle = index, 1
            if index > 0 and line[index - 1] in "12" and (
                index == 1 or line[index - 2] in " \t"
            ):
                start, handle = index - 1, int(line[index - 1])
            append = line[index + 1 : index + 2] == ">"
            cursor = index + (2 if append else 1)
            while cursor < len(line) and line[cursor] in " \t":
                cursor += 1
            if cursor < len(line) and line[cursor] == '"':
                close = line.find('"', cursor + 1)
                if close < 0:
                    return None
                target, end = line[cursor + 1 : close], close + 1
            else:
                end = cursor
                while end < len(line) and line[end] not in ' \t"<>|&':
                    end += 1
                target = line[cursor:end]
            if not target:
                return None
            found = (start, end, Redirection(handle, target, append))
            index = end
            continue
        index += 1
    if found is None:
        return line, None
    start, end, redirection = found
    return line[:start] + line[end:], redirection


def _is_nul(target: str) -> bool:
    return target.lower() in ("nul", "nul:")


def open_target(to: Redirection, files: HostFiles | None) -> ProcessResult | None:
    """Open (create, or truncate for ``>``) the target before the command runs: None when it
    opened, else cmd.exe's failure (the command does not run)."""
    if _is_nul(to.target):
        return None
    try:
        _files(files).write_file(to.target, "", append=to.append)
    except HostFileError as exc:
        return _failed(exc)
    return None


def redirect(result: ProcessResult, to: Redirection, files: HostFiles | None) -> ProcessResult:
    """Send one stream of a builtin's result to the opened target (``nul``: nowhere)."""
    text = result.stdout if to.handle == 1 else result.stderr
    if text and not _is_nul(to.target):
        try:
            _files(files).write_file(to.target, text, append=True)
        except HostFileError as exc:
            return _failed(exc)
    if to.handle == 1:
        return ProcessResult(stdout="", stderr=result.stderr, exit_code=result.exit_code)
    return ProcessResult(stdout=result.stdout, stderr="", exit_code=result.exit_code)


def echo(rest: str) -> ProcessResult:
    """``echo`` + ``rest`` (what follows the word, its first blank included)."""
    if not rest.strip():
        return ProcessResult(stdout="ECHO is on.\r\n")
    return ProcessResult(stdout=rest[1:] + "\r\n")


def mkdir(arguments: list[str], files: HostFiles | None) -> ProcessResult:
    if not arguments:
        return ProcessResult(stderr=SYNTAX + "\r\n", exit_code=1)
    for path in arguments:
        try:
            _files(files).make_directory(path)
        except HostFileError as exc:
            if exc.kind == "exists":
                return ProcessResult(
                    stderr=f"A subdirectory or file {path} already exists.\r\n", exit_code=1
                )
            return _failed(exc)
    return ProcessResult()


def move(arguments: list[str], files: HostFiles | None) -> ProcessResult:
    paths = [a for a in arguments if a.lower() not in ("/y", "/-y")]
    if len(paths) != 2:
        return ProcessResult(stderr=SYNTAX + "\r\n", exit_code=1)
    try:
        _files(files).move_file(paths[0], paths[1])
    except HostFileError as exc:
        return _failed(exc)
    return ProcessResult(stdout="        1 file(s) moved.\r\n")


def delete(arguments: list[str], files: HostFiles | None) -> ProcessResult:
    paths = [a for a in arguments if not a.startswith("/")]
    if not paths:
        return ProcessResult(stderr=SYNTAX + "\r\n", exit_code=1)
    missing = ""
    for path in paths:
        try:
            _files(files).delete_file(path)
        except HostFileError:
            missing += f"Could Not Find {path}\r\n"
    return ProcessResult(stderr=missing)  # del's exit code stays 0 for a missing file


class _NoFiles:
    """A lab without a file system: not even the folders exist."""

    def read_file(self, path: str) -> str:
        raise HostFileError("file", path)

    def write_file(self, path: str, text: str, *, append: bool) -> None:
        raise HostFileError("path", path)

    def make_directory(self, path: str) -> None:
        raise HostFileError("path", path)

    def move_file(self, source: str, target: str) -> None:
        raise HostFileError("file", source)

    def delete_file(self, path: str) -> None:
        raise HostFileError("file", path)


def _files(files: HostFiles | None) -> HostFiles:
    return files if files is not None else _NoFiles()


def _failed(exc: HostFileError) -> ProcessResult:
    message = {"path": NO_PATH, "file": NO_FILE, "denied": DENIED}.get(exc.kind, DENIED)
    return ProcessResult(stderr=message + "\r\n", exit_code=1)

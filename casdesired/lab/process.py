"""The seam between the lab's WS-Man side (cmd.exe, shells) and its Exchange side (PowerShell).

The wire side decodes ``powershell ... -EncodedCommand X`` and hands the script text plus the
command's whole stdin to a :class:`PowerShellHost`; it never interprets PowerShell itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ProcessResult:
    """What a finished process left: its stdout and stderr text, and its exit code."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


class PowerShellHost(Protocol):
    def run(self, script: str, stdin: bytes) -> ProcessResult:
        """Run a PowerShell script (decoded from -EncodedCommand) with the given stdin.

        Anything the host does not understand must fail as PowerShell would (an error record
        on stderr as CLIXML and a non-zero exit), never succeed silently.
        """
        ...

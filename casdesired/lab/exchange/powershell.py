"""The lab's powershell.exe: runs the casdesired bootstrap and agent, refuses anything else.

The wire side hands over the script decoded from ``-EncodedCommand`` and the command's stdin.
Only the exact :data:`~casdesired.agent.protocol.BOOTSTRAP_SCRIPT` is understood, and it runs
only a stdin whose script part starts with the agent's version marker. Everything else fails
as PowerShell fails: an error record serialised as CLIXML on stderr and exit code 1. The lab
never executes arbitrary PowerShell.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from casdesired.agent.protocol import (
    AGENT_MARKER,
    BOOTSTRAP_SCRIPT,
    REQUEST_SEPARATOR,
    encode_response,
)
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.agent import CmdletRunner, run_payload
from casdesired.lab.exchange.cmdlets import CMDLETS
from casdesired.lab.process import ProcessResult

CLIXML_HEADER = "#< CLIXML\r\n"
CLIXML_NS = "http://schemas.microsoft.com/powershell/2004/04"
NO_AGENT = "casdesired: no agent on stdin"
"""What the bootstrap itself prints (plain text, exit 3) when stdin has no separator."""
LAB_REFUSAL = (
    "The casdesired lab emulates only the casdesired agent (protocol marker '{marker}'); it "
    "does not run other PowerShell scripts."
)
_FIRST_WORD = re.compile(r"^\s*&?\s*([A-Za-z]+-[A-Za-z0-9]+)\b")


def run(runner: CmdletRunner, script: str, stdin: bytes) -> ProcessResult:
    """Run ``script`` (decoded from -EncodedCommand) with ``stdin`` as powershell.exe would."""
    if script != BOOTSTRAP_SCRIPT:
        return _refuse(script)
    text = stdin.decode("ascii", errors="replace")
    index = text.find(REQUEST_SEPARATOR)
    if index < 0:
        return ProcessResult(stderr=NO_AGENT + "\r\n", exit_code=3)
    agent_script = text[:index]
    if not agent_script.lstrip("\ufeff").startswith(AGENT_MARKER):
        return _refuse(agent_script)
    if not runner.settings.host_dotnet35:
        return _no_serializer()
    outcome = run_payload(runner, text[index + len(REQUEST_SEPARATOR) :].strip())
    stdout = "".join(f"{line}\r\n" for line in outcome.host_lines)
    # agent.ps1 writes the frame with [Console]::Out.Write: no newline after it.
    return ProcessResult(stdout=stdout + encode_response(outcome.response), exit_code=0)


def _no_serializer() -> ProcessResult:
    """The agent on a host without .NET 3.5's System.Web.Extensions: Add-Type fails, the
    fallback Assembly.Load throws, and with ErrorActionPreference Stop the script ends there,
    before reading the request (agent.ps1, "JSON")."""
    lines = [
        err.ASSEMBLY_NOT_FOUND,
        "At line:106 char:45",
        "+     [void][System.Reflection.Assembly]::Load <<<< (",
        "    + CategoryInfo          : NotSpecified: (:) [], MethodInvocationException",
        "    + FullyQualifiedErrorId : DotNetMethodException",
    ]
    return ProcessResult(stderr=clixml_errors(lines), exit_code=1)


def _refuse(script: str) -> ProcessResult:
    """A script the lab does not run. An Exchange or NLB cmdlet named first fails as it would
    in a plain powershell.exe (no snap-in, no module: "not recognized"); anything else gets the
    lab's own refusal, in the same error-record form."""
    first = _FIRST_WORD.match(script)
    if first and first.group(1).lower() in CMDLETS:
        name = first.group(1)
        lines = [
            err.TERM_NOT_RECOGNIZED.format(name=name),
            "At line:1 char:" + str(len(name) + 1),
            f"+ {name} <<<< ",
            f"    + CategoryInfo          : ObjectNotFound: ({name}:String) [], "
            "CommandNotFoundException",
            "    + FullyQualifiedErrorId : CommandNotFoundException",
        ]
    else:
        lines = [
            LAB_REFUSAL.format(marker=AGENT_MARKER),
            "    + CategoryInfo          : NotImplemented: (:) [], NotSupportedException",
            "    + FullyQualifiedErrorId : CasdesiredLabOnlyRunsTheAgent",
        ]
    return ProcessResult(stderr=clixml_errors(lines), exit_code=1)


def clixml_errors(lines: list[str]) -> str:
    """Error lines as PowerShell serialises its error stream for a non-console host."""
    body = "".join(f'<S S="Error">{_clixml_text(line + chr(13) + chr(10))}</S>' for line in lines)
    return f'{CLIXML_HEADER}<Objs Version="1.1.0.1" xmlns="{CLIXML_NS}">{body}</Objs>'


def _clixml_text(text: str) -> str:
    """XML-escape, then encode control characters (and literal ``_x``) as ``_xHHHH_``."""
    text = text.replace("_x", "_x005F_x")
    encoded = "".join(
        f"_x{ord(ch):04X}_" if ord(ch) < 0x20 and ch not in "\t" else ch for ch in text
    )
    return escape(encoded)

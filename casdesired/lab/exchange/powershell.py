"""The lab's powershell.exe: runs casdesired's two bootstraps and the agent, refuses anything else.

The wire side hands over the script decoded from ``-EncodedCommand`` and the command's stdin;
the process (:func:`casdesired.lab.process.current`) carries its environment and whether it
reads stdin at all (``-InputFormat None`` says no). Two scripts are understood, character for
character:

* :data:`casdesired.agent.delivery.stdin.BOOTSTRAP_SCRIPT` runs only a stdin whose script part
  starts with the agent's version marker. It writes
  :data:`~casdesired.agent.delivery.stdin.STDIN_READ` at once after reading stdin;
* the file delivery's bootstrap (:func:`casdesired.agent.delivery.files.parse_bootstrap`)
  reads the agent file and the request file from the organisation's files
  (:class:`~casdesired.lab.exchange.hostfiles.OrganisationFiles`), checks both SHA-256 as the
  real one does and runs nothing on a mismatch, deletes the request file, and takes the
  credential out of the environment.

How stdin behaves is the organisation's ``powershell_stdin`` setting (field §5): ``hangs``
keeps a powershell.exe that reads stdin waiting until its process is killed, ``empty`` hands it
nothing. Everything else fails as PowerShell fails: an error record serialised as CLIXML on
stderr and exit code 1. The lab never executes arbitrary PowerShell.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
from typing import Protocol
from xml.sax.saxutils import escape

from casdesired.agent.delivery import files as file_delivery
from casdesired.agent.delivery.stdin import (
    BOOTSTRAP_SCRIPT,
    NO_AGENT,
    NO_AGENT_EXIT,
    REQUEST_SEPARATOR,
    STDIN_READ,
)
from casdesired.agent.framing import encode_response, gunzip
from casdesired.agent.protocol import AGENT_MARKER
from casdesired.agent.script import PROBES_MARKER
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.agent import run_payload
from casdesired.lab.exchange.cmdlets import CMDLETS
from casdesired.lab.exchange.models import Behaviour
from casdesired.lab.exchange.runner import CmdletRunner
from casdesired.lab.journal import Journal
from casdesired.lab.process import (
    HostFileError,
    HostFiles,
    ProcessResult,
    RunningProcess,
    checkpoint,
    current,
)

CLIXML_HEADER = "#< CLIXML\r\n"
CLIXML_NS = "http://schemas.microsoft.com/powershell/2004/04"
LAB_REFUSAL = (
    "The casdesired lab emulates only the casdesired agent (protocol marker '{marker}'); it "
    "does not run other PowerShell scripts."
)
HUNG_OUTSIDE_A_SHELL = (
    "casdesired lab: this powershell.exe would hang reading its stdin (powershell_stdin: hangs)"
)
DEFAULT_PROGRAM_DATA = "C:\\ProgramData"
_FIRST_WORD = re.compile(r"^\s*&?\s*([A-Za-z]+-[A-Za-z0-9]+)\b")


class PowerShellHost(CmdletRunner, Protocol):
    """What the lab's powershell.exe needs of the organisation."""

    @property
    def behaviour(self) -> Behaviour: ...

    @property
    def files(self) -> HostFiles: ...

    @property
    def journal(self) -> Journal: ...


def run(host: PowerShellHost, script: str, stdin: bytes) -> ProcessResult:
    """Run ``script`` (decoded from -EncodedCommand) with ``stdin`` as powershell.exe would."""
    process = current()
    reads_stdin = process is None or process.reads_stdin
    if reads_stdin:
        mode = host.behaviour.powershell_stdin
        if mode == "hangs":
            return _hang(process)
        if mode == "empty":
            stdin = b""
    else:
        stdin = b""
    if script == BOOTSTRAP_SCRIPT:
        return _stdin_bootstrap(host, process, stdin)
    parsed = file_delivery.parse_bootstrap(script)
    if parsed is not None:
        return _file_bootstrap(host, process, *parsed)
    return _refuse(script)


def _hang(process: RunningProcess | None) -> ProcessResult:
    """[Console]::In never returns: the process waits until WinRM kills it."""
    if process is None:
        return ProcessResult(stderr=HUNG_OUTSIDE_A_SHELL + "\r\n", exit_code=1)
    while not process.wait_killed(0.05):
        pass
    checkpoint()  # raises ProcessKilled: the shell journals the kill
    return ProcessResult(exit_code=1)  # not reached


def _stdin_bootstrap(
    host: PowerShellHost, process: RunningProcess | None, stdin: bytes
) -> ProcessResult:
    early = STDIN_READ + "\r\n"
    if process is not None:
        process.write_stdout(early)  # [Console]::Out is flushed at once
        early = ""
    text = stdin.decode("ascii", errors="replace")
    index = text.find(REQUEST_SEPARATOR)
    if index < 0:
        return ProcessResult(stdout=early, stderr=NO_AGENT + "\r\n", exit_code=NO_AGENT_EXIT)
    agent_script = text[:index]
    if not agent_script.lstrip("\ufeff").startswith(AGENT_MARKER):
        return _refuse(agent_script)
    payload = text[index + len(REQUEST_SEPARATOR) :].strip()
    return _agent(host, early, payload, "", _has_probes(agent_script))


def _file_bootstrap(
    host: PowerShellHost, process: RunningProcess | None, agent_sha: str, run_id: str,
    request_sha: str,
) -> ProcessResult:
    env = process.getenv if process is not None else (lambda _name: None)
    folder = (env("ProgramData") or DEFAULT_PROGRAM_DATA) + "\\casdesired\\agent\\"
    agent = _read_checked(host, folder + file_delivery.agent_name(agent_sha), agent_sha)
    if agent is None:
        message = file_delivery.NO_AGENT_FILE.format(sha=agent_sha)
        return ProcessResult(stderr=message + "\r\n", exit_code=file_delivery.NO_AGENT_FILE_EXIT)
    request_path = folder + file_delivery.request_name(run_id)
    packed = _read_checked(host, request_path, request_sha, delete=True)
    if packed is None:
        message = file_delivery.NO_REQUEST_FILE.format(sha=request_sha)
        return ProcessResult(
            stderr=message + "\r\n", exit_code=file_delivery.NO_REQUEST_FILE_EXIT
        )
    credential = ""
    if process is not None:
        credential = process.getenv(file_delivery.CREDENTIAL_VARIABLE) or ""
        process.unsetenv(file_delivery.CREDENTIAL_VARIABLE)
    agent_script = agent.decode("ascii", errors="replace")
    if not agent_script.startswith(AGENT_MARKER):
        return _refuse(agent_script)
    payload = base64.b64encode(gunzip(packed)).decode("ascii")
    if process is not None:  # what it holds, for the memory model (as if it came on stdin)
        process.loaded = (agent_script + REQUEST_SEPARATOR + payload).encode("ascii")
    return _agent(host, "", payload, credential, _has_probes(agent_script))


def _read_checked(
    host: PowerShellHost, path: str, sha: str, *, delete: bool = False
) -> bytes | None:
    """The file's base64 content decoded (.NET's FromBase64String skips whitespace) when its
    SHA-256 is ``sha``; None otherwise, and nothing of it is used. ``delete``: the file is
    removed once read (whatever it held)."""
    try:
        text = host.files.read_file(path)
    except HostFileError:
        text = None
    if delete:
        with contextlib.suppress(HostFileError):
            host.files.delete_file(path)
    data: bytes | None = None
    if text is not None:
        try:
            data = base64.b64decode(re.sub(r"\s", "", text), validate=True)
        except (binascii.Error, ValueError):
            data = None
    ok = data is not None and hashlib.sha256(data).hexdigest() == sha
    host.journal.record("file", op="verify", path=path, ok=ok, sha256=sha)
    return data if ok else None


def _has_probes(agent_script: str) -> bool:
    """Whether the agent came with its probes (a diagnose request's: casdesired.agent.script)."""
    return any(line.startswith(PROBES_MARKER) for line in agent_script.splitlines())


def _agent(
    host: PowerShellHost, early: str, payload: str, credential: str, probes: bool
) -> ProcessResult:
    if not host.behaviour.host_dotnet35:
        return _no_serializer(early)
    outcome = run_payload(host, payload, credential, probes=probes)
    stdout = early + "".join(f"{line}\r\n" for line in outcome.host_lines)
    # agent.ps1 writes the frame with [Console]::Out.Write: no newline after it.
    return ProcessResult(stdout=stdout + encode_response(outcome.response), exit_code=0)


def _no_serializer(early: str) -> ProcessResult:
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
    return ProcessResult(stdout=early, stderr=clixml_errors(lines), exit_code=1)


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

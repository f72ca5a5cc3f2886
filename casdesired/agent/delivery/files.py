"""The file delivery: no standard input at all (``connection.agent.delivery: file``).

Windows PowerShell 2.0 is reported to hang on, or misread, a redirected stdin on some hosts
(shared/domain/exchange2010-field.md §5). This delivery never sends stdin; everything travels
in WS-Man messages of one shell:

* **The agent** is kept on the host as ``%ProgramData%\\casdesired\\agent\\agent-<SHA>.b64``:
  base64 of agent.ps1's bytes, named by their SHA-256. When it is missing (or its content does
  not hash to its name) casdesired writes it again, in command lines of ``cmd.exe``'s ``echo``
  (:func:`write_lines`) to ``upload-<RUN>.b64``, then ``move /y`` puts it in place. While the
  file hashes to the name, every later run reuses it.
* **The request** (without the credential) is gzip'd and written, the same way, to
  ``request-<RUN>.b64`` for this run only; ``<RUN>`` is 32 random hex digits.
* **The credential** for the agent's second hops travels in the shell's environment
  (:data:`CREDENTIAL_VARIABLE`, set by the WS-Man Create; winrs's ``-env``), never on a command
  line: command lines can be recorded by process-creation auditing (event 4688 with command
  line logging).
* **The bootstrap** (:func:`bootstrap`, as ``-EncodedCommand``, with ``-InputFormat None`` so
  powershell.exe never reads stdin) reads the agent file and checks its SHA-256 *every run*,
  on the bytes it then runs — never on a mismatch (exit :data:`NO_AGENT_FILE_EXIT`, nothing
  run, the request left in place for the retry) —, reads and deletes the request file and
  checks its SHA-256 (exit :data:`NO_REQUEST_FILE_EXIT` on a mismatch), inflates the request,
  takes the credential out of its environment and runs the agent as a script block with both.

Who can write there: ``%ProgramData%``'s default ACL lets every local user create files and
folders below it (and read what casdesired writes, which is why nothing secret is written), so
casdesired does not rely on that folder being private: it runs only bytes whose SHA-256 it
sent on the bootstrap's own command line, read once into memory and run from there, so a file
changed before or after the check is never run. What a local user *can* do there is make a run
fail (delete or replace a file), never make it run something else.

Every command line is a fixed template whose only variable parts are base64 and hex
(:func:`check_line`), well under cmd.exe's 8,191 characters even when ``%ProgramData%``
expands to the longest path Windows allows (:data:`MAX_LINE`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import replace

from casdesired.agent.framing import (
    POWERSHELL_ARGS,
    POWERSHELL_EXE,
    encode_command,
    gzip,
    request_json,
)
from casdesired.agent.protocol import Credential, Request

CMD_MAX_LINE = 8191
"""cmd.exe's limit on one command line, after its ``%variable%`` expansion."""
PROGRAM_DATA = "%ProgramData%"
MAX_PATH = 260
EXPANSION_MARGIN = 2 * (MAX_PATH - len(PROGRAM_DATA))
"""A line names ``%ProgramData%`` at most twice (``move``); each may expand to a full path."""
MAX_LINE = CMD_MAX_LINE - EXPANSION_MARGIN
"""The longest command line casdesired sends (before expansion)."""
CHUNK_CHARS = 7500
"""Base64 characters per ``echo`` line (a multiple of 4: every line is base64 on its own)."""

AGENT_DIR = PROGRAM_DATA + "\\casdesired\\agent"
"""The folder on the host, as cmd.exe reads it (it expands ``%ProgramData%``)."""
AGENT_DIR_UNDER_PROGRAM_DATA = "casdesired\\agent"
CREDENTIAL_VARIABLE = "CASDESIRED_CREDENTIAL"
"""The shell's environment variable holding base64 of the credential's JSON."""

NO_AGENT_FILE = "casdesired: no agent file with SHA-256 {sha}"
NO_AGENT_FILE_EXIT = 4
NO_REQUEST_FILE = "casdesired: no request file with SHA-256 {sha}"
NO_REQUEST_FILE_EXIT = 5

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_RUN = re.compile(r"^[0-9a-f]{32}$")
_B64 = "[A-Za-z0-9+/]+={0,2}"


def agent_name(sha: str) -> str:
    return f"agent-{_hex(sha, _HEX64)}.b64"


def request_name(run_id: str) -> str:
    return f"request-{_hex(run_id, _RUN)}.b64"


def upload_name(run_id: str) -> str:
    return f"upload-{_hex(run_id, _RUN)}.b64"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hex(value: str, pattern: re.Pattern[str]) -> str:
    """Only lower-case hex of the expected length ever reaches a command line or a script."""
    if not pattern.match(value):
        raise ValueError(f"not a hex value casdesired puts on a command line: {value!r}")
    return value


# --- what travels ----------------------------------------------------------------------------
def agent_payload(agent_script: str) -> tuple[str, str]:
    """(SHA-256 of agent.ps1's bytes, their base64): what the agent file holds."""
    data = agent_script.encode("ascii")
    return sha256(data), base64.b64encode(data).decode("ascii")


def request_payload(request: Request) -> tuple[str, str]:
    """(SHA-256 of the packed request, its base64): the request without its credential, as
    gzip of its JSON. The credential goes in the environment (:func:`environment`)."""
    packed = gzip(request_json(replace(request, credential=None)))
    return sha256(packed), base64.b64encode(packed).decode("ascii")


def environment(credential: Credential | None) -> dict[str, str]:
    """The shell's environment for a run: the credential as base64 of its JSON (base64: no
    ``%``, which WinRM refuses in a variable, and no quoting to get wrong)."""
    if credential is None:
        return {}
    text = json.dumps(credential.to_json(), ensure_ascii=False, separators=(",", ":"))
    return {CREDENTIAL_VARIABLE: base64.b64encode(text.encode("utf-8")).decode("ascii")}


# --- cmd.exe command lines -------------------------------------------------------------------
def _path(name: str) -> str:
    return f'"{AGENT_DIR}\\{name}"'


def write_lines(name: str, text: str) -> list[str]:
    """``echo`` lines that write ``text`` (base64) to ``name`` in the agent folder: the first
    creates (``>``), the others append (``>>``). Redirection comes first, so the text is all
    that follows ``echo`` (``echo X1>f`` would read ``1>`` as a handle)."""
    if not text or not re.fullmatch(_B64, text):
        raise ValueError("only base64 text is written with echo")
    chunks = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)]
    lines = [
        f"{'>' if index == 0 else '>>'}{_path(name)} echo {chunk}"
        for index, chunk in enumerate(chunks)
    ]
    for line in lines:
        check_line(line)
    return lines


def mkdir_line() -> str:
    """Creates the agent folder and the folders above it (cmd.exe's extensions, on by default)."""
    return f'mkdir "{AGENT_DIR}"'


def move_line(run_id: str, sha: str) -> str:
    """Puts an uploaded agent in place, replacing whatever held its name."""
    return f"move /y {_path(upload_name(run_id))} {_path(agent_name(sha))}"


def delete_line(run_id: str) -> str:
    """Removes an upload that could not be moved in place."""
    return f"del /q {_path(upload_name(run_id))}"


def delete_request_line(run_id: str) -> str:
    """Removes a run's request file that no bootstrap read (the run failed before)."""
    return f"del /q {_path(request_name(run_id))}"


def bootstrap(agent_sha: str, run_id: str, request_sha: str) -> str:
    """The bootstrap script for one run (PowerShell 2.0): only hex varies in it."""
    return (
        BOOTSTRAP_TEMPLATE.replace("@AGENT@", _hex(agent_sha, _HEX64))
        .replace("@RUN@", _hex(run_id, _RUN))
        .replace("@REQUEST@", _hex(request_sha, _HEX64))
    )


def command_line(agent_sha: str, run_id: str, request_sha: str) -> tuple[str, list[str]]:
    """powershell.exe with ``-InputFormat None`` (it never reads stdin) and the bootstrap."""
    script = encode_command(bootstrap(agent_sha, run_id, request_sha))
    return POWERSHELL_EXE, [*POWERSHELL_ARGS, "-InputFormat", "None", "-EncodedCommand", script]


def joined(executable: str, arguments: list[str]) -> str:
    """The line cmd.exe sees: WinRS joins the command and its arguments with single spaces."""
    return " ".join([executable, *arguments])


# PowerShell 2.0 only; tests/agent parses it. The agent is loaded from the file into memory
# once, hashed and run from that same memory, so no change to the file can slip between the
# check and the run. SHA256CryptoServiceProvider (System.Core, .NET 3.5) also works where the
# FIPS policy forbids the managed SHA256. An empty catch block is avoided on purpose (the
# grammar the tests use cannot read one).
BOOTSTRAP_TEMPLATE = (
    "$ErrorActionPreference='Stop';$ProgressPreference='SilentlyContinue';"
    "[void][Reflection.Assembly]::Load("
    "'System.Core, Version=3.5.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089');"
    "$h=New-Object Security.Cryptography.SHA256CryptoServiceProvider;"
    f"$d=Join-Path $env:ProgramData '{AGENT_DIR_UNDER_PROGRAM_DATA}';"
    "$a=$null;"
    "try{$a=[Convert]::FromBase64String("
    "[IO.File]::ReadAllText((Join-Path $d 'agent-@AGENT@.b64')))}"
    "catch{$a=$null};"
    "if($null -eq $a -or [BitConverter]::ToString($h.ComputeHash($a)).Replace('-','') -ne "
    "'@AGENT@'){"
    f"[Console]::Error.WriteLine('{NO_AGENT_FILE.format(sha='@AGENT@')}');"
    f"exit {NO_AGENT_FILE_EXIT}}};"
    "$f=Join-Path $d 'request-@RUN@.b64';$r=$null;"
    "try{$r=[Convert]::FromBase64String([IO.File]::ReadAllText($f))}catch{$r=$null};"
    "try{[IO.File]::Delete($f)}catch{$f=$null};"
    "if($null -eq $r -or [BitConverter]::ToString($h.ComputeHash($r)).Replace('-','') -ne "
    "'@REQUEST@'){"
    f"[Console]::Error.WriteLine('{NO_REQUEST_FILE.format(sha='@REQUEST@')}');"
    f"exit {NO_REQUEST_FILE_EXIT}}};"
    "$z=New-Object IO.Compression.GZipStream((New-Object IO.MemoryStream(,$r)),"
    "([IO.Compression.CompressionMode]::Decompress));"
    "$o=New-Object IO.MemoryStream;$b=New-Object byte[] 65536;"
    "while(($n=$z.Read($b,0,$b.Length)) -gt 0){$o.Write($b,0,$n)};"
    f"$c=[string]$env:{CREDENTIAL_VARIABLE};$env:{CREDENTIAL_VARIABLE}=$null;"
    "& ([scriptblock]::Create([Text.Encoding]::ASCII.GetString($a)))"
    " ([Convert]::ToBase64String($o.ToArray())) ($c)"
)

_BOOTSTRAP = re.compile(
    "^"
    + re.escape(BOOTSTRAP_TEMPLATE)
    .replace(re.escape("@AGENT@"), "(?P<agent>[0-9a-f]{64})", 1)
    .replace(re.escape("@AGENT@"), "(?P=agent)")
    .replace(re.escape("@RUN@"), "(?P<run>[0-9a-f]{32})")
    .replace(re.escape("@REQUEST@"), "(?P<request>[0-9a-f]{64})", 1)
    .replace(re.escape("@REQUEST@"), "(?P=request)")
    + "$"
)


def parse_bootstrap(script: str) -> tuple[str, str, str] | None:
    """(agent SHA-256, run id, request SHA-256) when ``script`` is :func:`bootstrap`'s, else
    None (the lab recognises the bootstrap by this, character for character)."""
    match = _BOOTSTRAP.match(script)
    if match is None:
        return None
    return match["agent"], match["run"], match["request"]


# --- what casdesired may send ----------------------------------------------------------------
_DIR = re.escape(AGENT_DIR)
_LINES = (
    re.compile(rf'^>>?"{_DIR}\\(?:request|upload)-[0-9a-f]{{32}}\.b64" echo {_B64}$'),
    re.compile(rf'^mkdir "{_DIR}"$'),
    re.compile(
        rf'^move /y "{_DIR}\\upload-[0-9a-f]{{32}}\.b64" "{_DIR}\\agent-[0-9a-f]{{64}}\.b64"$'
    ),
    re.compile(rf'^del /q "{_DIR}\\(?:request|upload)-[0-9a-f]{{32}}\.b64"$'),
    re.compile(
        r"^powershell\.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass "
        rf"-InputFormat None -EncodedCommand {_B64}$"
    ),
)


def check_line(line: str) -> str:
    """``line`` if it is one of the fixed cmd.exe templates with only base64 or hex in its
    variable parts and within :data:`MAX_LINE`; ValueError otherwise (a casdesired bug)."""
    if len(line) > MAX_LINE:
        raise ValueError(f"a command line of {len(line)} characters (over {MAX_LINE})")
    if not any(pattern.match(line) for pattern in _LINES):
        raise ValueError(f"not a command line casdesired sends: {line[:80]!r}")
    return line

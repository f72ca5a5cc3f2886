"""The stdin delivery (the default): one command, the agent and its request on stdin.

1. The command line is short and fixed: ``powershell.exe ... -EncodedCommand <BOOTSTRAP>``. It
   stays far under cmd.exe's 8,191-character limit whatever the organisation's size.
2. stdin carries the agent script (``agent.ps1``, ASCII, first line
   :data:`~casdesired.agent.protocol.AGENT_MARKER`), then :data:`REQUEST_SEPARATOR`, then the
   request (:func:`~casdesired.agent.framing.encode_request`), and is closed.
3. The bootstrap reads all of stdin, writes :data:`STDIN_READ` on stdout at once, runs the
   agent part as a script block and hands it the request part.

:data:`STDIN_READ` is how casdesired tells a powershell.exe that never finished reading its
redirected stdin — Windows PowerShell 2.0 is reported to hang there on some hosts
(shared/domain/exchange2010-field.md §5) — from an agent that is merely working: no marker
within ``connection.agent.start_timeout_seconds`` means the agent never started. The ``file``
delivery (:mod:`.files`) does not use stdin at all.
"""

from __future__ import annotations

from casdesired.agent.framing import POWERSHELL_ARGS, POWERSHELL_EXE, decode_request, encode_command
from casdesired.agent.framing import encode_request as _encode_request
from casdesired.agent.protocol import AGENT_MARKER, Request
from casdesired.errors import ProtocolError

REQUEST_SEPARATOR = "#<casdesired-request>"
STDIN_READ = "<casdesired-stdin-read/>"
"""The bootstrap's first line on stdout, written as soon as it has read all of stdin."""
NO_AGENT = "casdesired: no agent on stdin"
"""What the bootstrap itself prints (plain text, exit :data:`NO_AGENT_EXIT`) when stdin has no
separator: it read nothing, or not what casdesired sent."""
NO_AGENT_EXIT = 3

# The bootstrap sent on the command line. PowerShell 2.0 syntax only. It reads the whole of
# stdin, says so, runs the agent part as a script block and hands it the (base64) request part.
# The argument is parenthesised: an expression in parentheses is the same value to PowerShell,
# and a grammar that follows the language specification (tests/agent parses this text) reads it.
BOOTSTRAP_SCRIPT = (
    "$ErrorActionPreference='Stop';$ProgressPreference='SilentlyContinue';"
    "$s=[Console]::In.ReadToEnd();"
    f"[Console]::Out.WriteLine('{STDIN_READ}');"
    f"$i=$s.IndexOf('{REQUEST_SEPARATOR}');"
    f"if($i -lt 0){{[Console]::Error.WriteLine('{NO_AGENT}');exit {NO_AGENT_EXIT}}};"
    "& ([scriptblock]::Create($s.Substring(0,$i)))"
    f" ($s.Substring($i+{len(REQUEST_SEPARATOR)}).Trim())"
)


def command_line() -> tuple[str, list[str]]:
    """The executable and arguments that start the agent; constant and short."""
    return POWERSHELL_EXE, [*POWERSHELL_ARGS, "-EncodedCommand", encode_command(BOOTSTRAP_SCRIPT)]


def encode_stdin(agent_script: str, request: Request) -> bytes:
    """What is sent on stdin: agent script, separator, base64 request. Pure ASCII."""
    if not agent_script.startswith(AGENT_MARKER):
        raise ValueError("agent script must start with the protocol marker")
    payload = _encode_request(request)
    text = f"{agent_script.rstrip()}\r\n{REQUEST_SEPARATOR}\r\n{payload}\r\n"
    return text.encode("ascii")


def decode_stdin(data: bytes) -> tuple[str, Request]:
    """The lab's side of :func:`encode_stdin`: (agent script, request)."""
    text = data.decode("ascii", errors="replace")
    index = text.find(REQUEST_SEPARATOR)
    if index < 0:
        raise ProtocolError("no request separator on stdin")
    script, payload = text[:index], text[index + len(REQUEST_SEPARATOR) :]
    if not script.lstrip("\ufeff").startswith(AGENT_MARKER):
        raise ProtocolError("stdin does not start with the casdesired agent")
    return script, decode_request(payload)

"""The two ways a run gets the agent and its request to the host, in the run's one shell.

``stdin`` (:func:`run_stdin`): one command, the agent and the request on its stdin. ``file``
(:func:`run_file`): no stdin; ``cmd.exe`` command lines write the request (and, when the host
does not hold this agent yet, the agent) under ``%ProgramData%\\casdesired\\agent``, and the
bootstrap checks both by SHA-256 before it runs anything (:mod:`casdesired.agent.delivery`).

Round trips (WS-Man requests), besides Create and Delete: ``stdin`` sends Command, one Send
per 64 KB of stdin, the Receives the answer needs, and Signal. ``file`` sends Command, Receive
and Signal per ``echo`` line of 7,500 base64 characters (about 5.6 KB of the gzip'd request),
then the same for the bootstrap; on a host that lacks this agent, one bootstrap that answers
"no agent file", the agent's lines (about 60,000 base64 characters: 9 lines) and a ``move``,
and the bootstrap again (docs/agent.md has the measured counts).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable

from casdesired.agent.delivery import files
from casdesired.agent.delivery import stdin as stdin_delivery
from casdesired.agent.framing import AgentProgress, ProgressReader
from casdesired.agent.protocol import Request
from casdesired.agent.script import agent_script
from casdesired.errors import AgentNotStarted, CasdesiredError, ConnectionFailed
from casdesired.transport.errors import clean_stderr, scrub
from casdesired.transport.shell import AgentShell, NotStartedInTime, Output

ProgressCallback = Callable[[AgentProgress], None]
"""Shown each progress line of the agent as the Receive that carries it comes back."""


def _reader(progress: ProgressCallback | None) -> Callable[[bytes], None] | None:
    """A stdout watcher for one agent command: its progress lines go to ``progress``."""
    if progress is None:
        return None
    reader = ProgressReader()

    def watch(data: bytes) -> None:
        for mark in reader.feed(data):
            progress(mark)

    return watch


USE_FILE_DELIVERY = (
    "set connection.agent.delivery: file in the organisation file, which sends nothing on "
    "stdin (docs/agent.md)"
)


# --- stdin -----------------------------------------------------------------------------------
def run_stdin(
    shell: AgentShell, request: Request, start_timeout: float,
    progress: ProgressCallback | None = None,
) -> Output:
    """The agent and the request on stdin; the bootstrap must say it read them within
    ``start_timeout`` seconds."""
    stdin = stdin_delivery.encode_stdin(agent_script(request.diagnose), request)
    executable, arguments = stdin_delivery.command_line()
    url = shell.target.url
    command_id = shell.start("starting the agent", executable, arguments, agent=True)
    shell.send(command_id, stdin)
    try:
        output = shell.receive(
            command_id, "reading the agent's output",
            started_by=(stdin_delivery.STDIN_READ, start_timeout), on_stdout=_reader(progress),
        )
    except NotStartedInTime:
        raise ConnectionFailed(
            f"the agent on {url} did not start within {start_timeout:g} s: powershell.exe "
            "never finished reading its standard input. Windows PowerShell 2.0 is reported to "
            f"hang on a redirected stdin on some hosts: {USE_FILE_DELIVERY}; if the host is "
            "only slow to start PowerShell, raise connection.agent.start_timeout_seconds"
        ) from None
    if output.exit_code == stdin_delivery.NO_AGENT_EXIT and stdin_delivery.NO_AGENT.encode(
        "ascii"
    ) in output.stderr:
        raise AgentNotStarted(
            f"powershell.exe on {url} read nothing of what casdesired sent on its standard "
            "input, so the agent did not run. Windows PowerShell 2.0 is reported to misread a "
            f"redirected stdin on some hosts: {USE_FILE_DELIVERY}"
        )
    return output


# --- file ------------------------------------------------------------------------------------
def run_file(
    shell: AgentShell, request: Request, progress: ProgressCallback | None = None
) -> Output:
    """The request written to a file for this run, the agent to its file when the host lacks
    it, then the bootstrap, which checks both by SHA-256 before it runs anything."""
    agent_sha, agent_text = files.agent_payload(agent_script(request.diagnose))
    request_sha, request_text = files.request_payload(request)
    run_id = secrets.token_hex(16)
    request_name = files.request_name(run_id)
    executable, arguments = files.command_line(agent_sha, run_id, request_sha)
    files.check_line(files.joined(executable, arguments))
    no_agent = files.NO_AGENT_FILE.format(sha=agent_sha)
    try:
        _write(shell, request_name, request_text, "writing the request")
        output = _bootstrap(shell, executable, arguments, progress)
        if _said(output, files.NO_AGENT_FILE_EXIT, no_agent):
            shell.agent_started = False  # it ran nothing, and left the request in place
            _install_agent(shell, run_id, agent_sha, agent_text)
            output = _bootstrap(shell, executable, arguments, progress)
            if _said(output, files.NO_AGENT_FILE_EXIT, no_agent):
                shell.agent_started = False
                raise AgentNotStarted(
                    f"the agent file {files.AGENT_DIR}\\{files.agent_name(agent_sha)} on "
                    f"{shell.target.url} did not hold the agent casdesired had just written "
                    "there (its SHA-256 differed), so nothing was run: something else changes "
                    "files in that folder"
                )
    except CasdesiredError:
        # The request file stays unless a bootstrap read it: remove it while the connection
        # still works (it holds no secret, but it is this run's).
        if shell.intact and not shell.agent_started:
            _forget(shell, run_id)
        raise
    if _said(output, files.NO_REQUEST_FILE_EXIT, files.NO_REQUEST_FILE.format(sha=request_sha)):
        # The bootstrap deleted it, whatever it held.
        raise AgentNotStarted(
            f"the request file casdesired wrote on {shell.target.url} was missing or changed "
            "when the agent came to read it (its SHA-256 differed), so nothing was run: "
            f"something else changes files in {files.AGENT_DIR}"
        )
    return output


def _bootstrap(
    shell: AgentShell, executable: str, arguments: list[str], progress: ProgressCallback | None
) -> Output:
    command_id = shell.start("starting the agent", executable, arguments, agent=True)
    output = shell.receive(command_id, "reading the agent's output", on_stdout=_reader(progress))
    shell.finish(command_id)
    return output


def _said(output: Output, exit_code: int, text: str) -> bool:
    return output.exit_code == exit_code and text.encode("ascii") in output.stderr


def _write(shell: AgentShell, name: str, text: str, step: str) -> None:
    """Write ``text`` (base64) to ``name`` in the agent folder, creating the folder when the
    first line finds none."""
    lines = files.write_lines(name, text)
    for index, line in enumerate(lines):
        output = _cmd(shell, step, line)
        if output.exit_code != 0 and index == 0:
            _cmd(shell, "creating the agent folder", files.mkdir_line())
            output = _cmd(shell, step, line)
        if output.exit_code != 0:
            raise AgentNotStarted(
                f"casdesired could not write {files.AGENT_DIR}\\{name} on {shell.target.url}, "
                f"so nothing was run: cmd.exe said: {_said_text(shell, output)}"
            )


def _install_agent(shell: AgentShell, run_id: str, sha: str, text: str) -> None:
    """Write the agent under a name of this run's, then move it in place: two runs doing it at
    once never mix their lines in one file."""
    _write(shell, files.upload_name(run_id), text, "writing the agent")
    moved = _cmd(shell, "putting the agent in place", files.move_line(run_id, sha))
    if moved.exit_code != 0:
        # Another run may hold the file open while it checks it; the bootstrap decides.
        _cmd(shell, "removing the uploaded agent", files.delete_line(run_id))


def _forget(shell: AgentShell, run_id: str) -> None:
    """Best effort: remove this run's request file that no bootstrap consumed."""
    with contextlib.suppress(CasdesiredError, RuntimeError):
        _cmd(shell, "removing the request", files.delete_request_line(run_id))


def _cmd(shell: AgentShell, step: str, line: str) -> Output:
    """One cmd.exe line, which must be one of the fixed templates (:func:`files.check_line`)."""
    return shell.run(step, files.check_line(line))


def _said_text(shell: AgentShell, output: Output) -> str:
    raw = output.stderr.decode("utf-8", errors="replace")
    text = scrub(clean_stderr(raw), shell.target.secrets).strip()
    return text or f"exit code {output.exit_code}, nothing on stderr"

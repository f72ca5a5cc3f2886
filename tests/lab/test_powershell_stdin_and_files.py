"""The lab's powershell.exe: the file delivery's bootstrap, and stdin as field §5 reports it.

The bootstrap runs the agent only from an agent file whose SHA-256 is the one on its command
line, with a request file whose SHA-256 matches too; on any mismatch it runs nothing. The
``powershell_stdin`` setting makes a powershell.exe that reads its redirected stdin hang
until WinRM kills it, or read nothing.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator

import pytest
from winrm.exceptions import WinRMOperationTimeoutError

from casdesired.agent.delivery import files
from casdesired.agent.delivery.stdin import BOOTSTRAP_SCRIPT, NO_AGENT, STDIN_READ, encode_stdin
from casdesired.agent.framing import POWERSHELL_ARGS, decode_response, encode_command
from casdesired.agent.protocol import Credential, ExchangeSession, Invocation, Request
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.exchange.testing import agent_script
from casdesired.lab.process import HostFileError, ProcessResult, RunningProcess, running
from casdesired.lab.server import Lab

from .conftest import protocol

FOLDER = "C:\\ProgramData\\casdesired\\agent\\"
RUN = "5e" * 16
INVOCATIONS = (Invocation("arrays", "Get-ClientAccessArray", properties=("Fqdn",)),)
ARRAYS = Request(invocations=INVOCATIONS, exchange=ExchangeSession(mode="remote"))
"""The request as the file delivery writes it: the credential is not in it."""


def place(org: Organisation, agent: str, request: Request) -> tuple[str, str]:
    """Put the agent and request files where the bootstrap looks; (agent SHA, request SHA)."""
    agent_sha, agent_text = files.agent_payload(agent)
    request_sha, request_text = files.request_payload(request)
    with contextlib.suppress(HostFileError):
        org.files.make_directory(FOLDER.rstrip("\\"))
    org.files.write_file(FOLDER + files.agent_name(agent_sha), agent_text, append=False)
    org.files.write_file(FOLDER + files.request_name(RUN), request_text, append=False)
    return agent_sha, request_sha


def stored(org: Organisation) -> dict[str, str]:
    found: dict[str, str] = org.snapshot().get("files", {})
    return found


def run_as_process(org: Organisation, script: str, environment: dict[str, str]) -> ProcessResult:
    """``org.run`` as a process of a shell with ``environment`` (the Create's variables)."""
    process = RunningProcess(environment)
    with running(process):
        result = org.run(script, b"")
    assert files.CREDENTIAL_VARIABLE not in process.environment  # the bootstrap took it out
    return result


def credential_of(org: Organisation) -> dict[str, str]:
    return files.environment(Credential(org.logon.user, org.logon.password))


def test_the_bootstrap_runs_the_agent_whose_sha256_matches_and_deletes_the_request() -> None:
    org = Organisation.from_seed()
    agent_sha, request_sha = place(org, agent_script(), ARRAYS)
    result = run_as_process(org, files.bootstrap(agent_sha, RUN, request_sha), credential_of(org))
    assert result.exit_code == 0, result.stderr
    (arrays,) = decode_response(result.stdout).results
    assert {o["Fqdn"] for o in arrays.objects} == {
        "outlook-hq.contoso.local", "outlook-dr.contoso.local"
    }
    assert FOLDER + files.request_name(RUN) not in stored(org)
    assert FOLDER + files.agent_name(agent_sha) in stored(org)  # kept for the next run
    checks = [(e["op"], e["ok"]) for e in org.journal.entries(["file"]) if e["op"] == "verify"]
    assert checks == [("verify", True), ("verify", True)]


@pytest.mark.parametrize("where", ["first line", "last character"])
def test_an_agent_file_changed_by_one_character_is_never_run(where: str) -> None:
    org = Organisation.from_seed()
    agent_sha, request_sha = place(org, agent_script(), ARRAYS)
    path = FOLDER + files.agent_name(agent_sha)
    text = stored(org)[path]
    index = 0 if where == "first line" else len(text.rstrip()) - 2
    changed = text[:index] + ("B" if text[index] != "B" else "C") + text[index + 1 :]
    org.files.write_file(path, changed, append=False)
    result = org.run(files.bootstrap(agent_sha, RUN, request_sha), b"")
    assert (result.exit_code, result.stdout) == (files.NO_AGENT_FILE_EXIT, "")
    assert result.stderr == files.NO_AGENT_FILE.format(sha=agent_sha) + "\r\n"
    assert org.journal.count("cmdlet") == 0
    assert FOLDER + files.request_name(RUN) in stored(org)  # left for the run's retry


def test_a_missing_agent_file_runs_nothing_and_keeps_the_request() -> None:
    org = Organisation.from_seed()
    agent_sha, request_sha = place(org, agent_script(), ARRAYS)
    org.files.delete_file(FOLDER + files.agent_name(agent_sha))
    result = org.run(files.bootstrap(agent_sha, RUN, request_sha), b"")
    assert result.exit_code == files.NO_AGENT_FILE_EXIT
    assert org.journal.count("cmdlet") == 0


def test_a_changed_request_is_deleted_and_never_run() -> None:
    org = Organisation.from_seed()
    agent_sha, request_sha = place(org, agent_script(), ARRAYS)
    other = Request(invocations=(Invocation("x", "Remove-ClientAccessArray",
                                            {"Identity": "outlook-hq.contoso.local"}),))
    _sha, other_text = files.request_payload(other)
    org.files.write_file(FOLDER + files.request_name(RUN), other_text, append=False)
    result = org.run(files.bootstrap(agent_sha, RUN, request_sha), b"")
    assert result.exit_code == files.NO_REQUEST_FILE_EXIT
    assert result.stderr == files.NO_REQUEST_FILE.format(sha=request_sha) + "\r\n"
    assert org.journal.count("cmdlet") == 0
    assert FOLDER + files.request_name(RUN) not in stored(org)


def test_a_file_whose_sha256_matches_but_is_not_the_agent_is_refused() -> None:
    org = Organisation.from_seed()
    agent_sha, request_sha = place(org, "Remove-Item C:\\ -Recurse\r\n", ARRAYS)
    result = org.run(files.bootstrap(agent_sha, RUN, request_sha), b"")
    assert result.exit_code == 1 and "only the casdesired agent" in result.stderr
    assert org.journal.count("cmdlet") == 0


# --- over the wire: the environment, stdin's failures --------------------------------------
@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(Organisation.from_seed(), auth="basic", allow_unencrypted=True) as started:
        yield started


def _bootstrap_line(agent_sha: str, request_sha: str) -> str:
    return files.joined(*files.command_line(agent_sha, RUN, request_sha))


def test_the_credential_comes_from_the_shells_environment(lab: Lab) -> None:
    # Remote mode over a logon that cannot delegate: /PowerShell opens only with the explicit
    # credential, which here exists nowhere but in the Create's environment.
    org = lab.organisation
    assert isinstance(org, Organisation)
    request = ARRAYS
    agent_sha, request_sha = place(org, agent_script(), request)
    credential = Credential(lab.credentials.username, lab.credentials.password)
    proto = protocol(lab)
    for environment, ok in (({}, False), (files.environment(credential), True)):
        place(org, agent_script(), request)
        shell_id = proto.open_shell(codepage=65001, env_vars=environment or None)
        try:
            command_id = proto.run_command(shell_id, _bootstrap_line(agent_sha, request_sha))
            out, _err, _code = proto.get_command_output(shell_id, command_id)
        finally:
            proto.close_shell(shell_id)
        response = decode_response(out.decode())
        assert (response.fatal is None) is ok, response.fatal
        if not ok:
            assert "A specified logon session does not exist" in str(response.fatal)
    assert lab.credentials.password not in str(lab.journal.entries())


def _stdin_line(*extra: str) -> str:
    return " ".join(["powershell.exe", *POWERSHELL_ARGS, *extra, "-EncodedCommand",
                     encode_command(BOOTSTRAP_SCRIPT)])


def _stdin(lab: Lab) -> bytes:
    credential = Credential(lab.credentials.username, lab.credentials.password)
    return encode_stdin(agent_script(), Request(INVOCATIONS, credential=credential))


def test_a_hanging_powershell_waits_until_its_process_is_killed(lab: Lab) -> None:
    org = lab.organisation
    assert isinstance(org, Organisation)
    org.configure(powershell_stdin="hangs")
    proto = protocol(lab, operation_timeout_sec=1, read_timeout_sec=3)
    shell_id = proto.open_shell(codepage=65001)
    try:
        command_id = proto.run_command(shell_id, _stdin_line())
        proto.send_command_input(shell_id, command_id, _stdin(lab), end=True)
        for _ in range(2):  # no output at all, not even the bootstrap's "read" line
            with pytest.raises(WinRMOperationTimeoutError):
                proto.get_command_output_raw(shell_id, command_id)
        proto.cleanup_command(shell_id, command_id)  # Signal terminate: WinRM kills it
    finally:
        proto.close_shell(shell_id)
    (ended,) = lab.journal.entries(["process"])
    assert ended["outcome"] == "killed"
    assert lab.journal.count("cmdlet") == 0


def test_input_format_none_never_reads_stdin_so_it_never_hangs_on_it(lab: Lab) -> None:
    org = lab.organisation
    assert isinstance(org, Organisation)
    org.configure(powershell_stdin="hangs")
    agent_sha, request_sha = place(org, agent_script(), ARRAYS)
    session = protocol(lab)
    credential = Credential(lab.credentials.username, lab.credentials.password)
    shell_id = session.open_shell(codepage=65001, env_vars=files.environment(credential))
    try:
        command_id = session.run_command(shell_id, _bootstrap_line(agent_sha, request_sha))
        out, _err, code = session.get_command_output(shell_id, command_id)
        # The stdin bootstrap with -InputFormat None reads nothing at all.
        command_id = session.run_command(shell_id, _stdin_line("-InputFormat", "None"))
        session.send_command_input(shell_id, command_id, _stdin(lab), end=True)
        _out2, err2, code2 = session.get_command_output(shell_id, command_id)
    finally:
        session.close_shell(shell_id)
    assert code == 0 and decode_response(out.decode()).results[0].ok
    assert (code2, err2) == (3, (NO_AGENT + "\r\n").encode())


def test_a_powershell_that_reads_nothing_says_the_bootstrap_found_no_agent(lab: Lab) -> None:
    org = lab.organisation
    assert isinstance(org, Organisation)
    org.configure(powershell_stdin="empty")
    proto = protocol(lab)
    shell_id = proto.open_shell(codepage=65001)
    try:
        command_id = proto.run_command(shell_id, _stdin_line())
        proto.send_command_input(shell_id, command_id, _stdin(lab), end=True)
        out, err, code = proto.get_command_output(shell_id, command_id)
    finally:
        proto.close_shell(shell_id)
    assert (out, err, code) == ((STDIN_READ + "\r\n").encode(), (NO_AGENT + "\r\n").encode(), 3)
    assert lab.journal.count("cmdlet") == 0


def test_the_stdin_setting_takes_only_its_readings() -> None:
    org = Organisation.from_seed()
    assert org.behaviour.powershell_stdin == "works"  # the primary path must be tested working
    with pytest.raises(ValueError, match="powershell_stdin"):
        org.configure(powershell_stdin="sometimes")


def test_the_bootstraps_read_line_arrives_before_the_agent_is_done(lab: Lab) -> None:
    # A real [Console]::Out is flushed at once: the marker reaches a Receive while the agent
    # still works (here: held at a gate inside its one cmdlet).
    org = lab.organisation
    assert isinstance(org, Organisation)
    from casdesired.lab.faults import CmdletFault

    org.faults.cmdlets.append(CmdletFault("Get-ClientAccessArray", fail=False, gate="held"))
    proto = protocol(lab, operation_timeout_sec=2, read_timeout_sec=4)
    shell_id = proto.open_shell(codepage=65001)
    try:
        command_id = proto.run_command(shell_id, _stdin_line())
        proto.send_command_input(shell_id, command_id, _stdin(lab), end=True)
        assert org.faults.gate("held").wait_reached(10)
        out, _err, _code, done = proto.get_command_output_raw(shell_id, command_id)
        assert (out, done) == ((STDIN_READ + "\r\n").encode(), False)
        org.faults.gate("held").open()
        rest, _err, code = proto.get_command_output(shell_id, command_id)
    finally:
        proto.close_shell(shell_id)
    assert code == 0 and decode_response(rest.decode()).results[0].ok


def test_the_agent_file_is_base64_of_agent_ps1_named_by_its_sha256() -> None:
    sha, text = files.agent_payload(agent_script())
    assert sha == hashlib.sha256(agent_script().encode("ascii")).hexdigest()
    assert base64.b64decode(text) == agent_script().encode("ascii")

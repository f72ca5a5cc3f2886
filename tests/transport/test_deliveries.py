"""The two deliveries of the agent, through the real client against the lab.

``file`` sends nothing on stdin: the agent is written once per host and version, checked by its
SHA-256 before every run and never run on a mismatch; the request is written for each run; the
credential travels only in the shell's environment. ``stdin`` fails clearly where
powershell.exe 2.0 hangs on or misreads its stdin (the lab's ``powershell_stdin`` setting), and
``file`` works there.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Iterator

import pytest

from casdesired.agent import protocol
from casdesired.agent.delivery import files
from casdesired.agent.script import agent_script
from casdesired.errors import AgentNotStarted, ConnectionFailed
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import WireFault
from casdesired.lab.process import HostFileError
from casdesired.lab.server import Lab, LabCredentials
from casdesired.live.reader import read_live
from casdesired.transport.winrm import AgentClient

from .conftest import OrgDir, cli, target_of

PASSWORD = "Delivery-S3cret-Marker-4411"
FOLDER = "C:\\ProgramData\\casdesired\\agent\\"
AGENT_SHA, AGENT_TEXT = files.agent_payload(agent_script())
AGENT_FILE = FOLDER + files.agent_name(AGENT_SHA)
ONE_CALL = (protocol.Invocation("servers", "Get-ExchangeServer", properties=("Name",)),)


@pytest.fixture
def lab() -> Iterator[Lab]:
    org = Organisation.from_seed()
    with Lab(org, journal=org.journal, credentials=LabCredentials(password=PASSWORD)) as started:
        yield started


def organisation(lab: Lab) -> Organisation:
    org = lab.organisation
    assert isinstance(org, Organisation)
    return org


def stored(lab: Lab) -> dict[str, str]:
    found: dict[str, str] = organisation(lab).snapshot().get("files", {})
    return found


def actions(lab: Lab, since: int = 0) -> list[str]:
    return [str(e["action"]) for e in lab.journal.entries(["wsman"]) if int(e["seq"]) > since]


def last_seq(lab: Lab) -> int:
    return int(lab.journal.entries()[-1]["seq"])


def file_client(lab: Lab, **changes: object) -> AgentClient:
    return AgentClient(target_of(lab, delivery="file", **changes))


def test_the_agent_is_written_once_and_reused_while_its_sha256_matches(lab: Lab) -> None:
    client = file_client(lab)
    assert client.run(client.make_request(ONE_CALL)).results[0].ok
    first = client.commands
    agent_lines = math.ceil(len(AGENT_TEXT) / files.CHUNK_CHARS)
    # request (its folder made first), a bootstrap that finds no agent, the agent's lines and
    # a move, the bootstrap again
    assert first == 1 + 2 + 1 + agent_lines + 1 + 1
    assert base64.b64decode(re.sub(r"\s", "", stored(lab)[AGENT_FILE])) == (
        agent_script().encode("ascii")
    )
    mark = last_seq(lab)
    assert client.run(client.make_request(ONE_CALL)).results[0].ok
    # Reused: one echo line for the request and the bootstrap, each Command, Receive, Signal.
    assert client.commands - first == 2
    assert actions(lab, mark) == ["Create", *["Command", "Receive", "Signal"] * 2, "Delete"]
    assert client.executions == 2 and lab.open_shells == 0
    # Nothing of a run is left behind but the agent file; no run ever used stdin.
    assert sorted(stored(lab)) == [FOLDER, AGENT_FILE]
    assert "Send" not in actions(lab)


def test_each_run_is_one_shell_and_its_command_lines_are_only_templates(lab: Lab) -> None:
    client = file_client(lab)
    live = read_live(client, nlb_hosts=["BR-CAS01"])
    assert len(live.estate.databases) == 12
    creates = actions(lab).count("Create")
    assert creates == client.executions == 1 and lab.open_shells == 0
    lines = [str(e["command_line"]) for e in lab.journal.entries(["command"])]
    assert all(files.check_line(line) for line in lines)


def test_the_credential_travels_only_in_the_shells_environment(lab: Lab) -> None:
    client = file_client(lab)
    assert client.run(client.make_request(ONE_CALL)).results[0].ok  # remote mode: it needs it
    everything = str(lab.journal.entries()) + str(organisation(lab).snapshot())
    assert PASSWORD not in everything
    encoded = files.environment(protocol.Credential(lab.credentials.username, PASSWORD))
    assert next(iter(encoded.values())) not in everything


def test_a_changed_agent_file_is_never_run_and_is_written_again(lab: Lab) -> None:
    client = file_client(lab)
    assert client.run(client.make_request(ONE_CALL)).results[0].ok
    # Someone (a local user may: %ProgramData%'s ACL lets them) puts other bytes under the name.
    text = stored(lab)[AGENT_FILE]
    _sha, changed = files.agent_payload(agent_script() + "\r\nRemove-Item C:\\ -Recurse\r\n")
    organisation(lab).files.write_file(AGENT_FILE, changed, append=False)
    mark = last_seq(lab)
    response = client.run(client.make_request(ONE_CALL))
    assert response.results[0].ok
    checks = [e["ok"] for e in lab.journal.entries(["file"])
              if e["op"] == "verify" and e["path"] == AGENT_FILE and int(e["seq"]) > mark]
    assert checks == [False, True]  # refused, then the rewritten file
    assert stored(lab)[AGENT_FILE] == text


def test_an_agent_that_cannot_be_put_in_place_runs_nothing_and_says_why(lab: Lab) -> None:
    organisation(lab).files.make_directory(AGENT_FILE)  # a folder holds the agent's name
    client = file_client(lab)
    with pytest.raises(AgentNotStarted) as raised:
        client.run(client.make_request(ONE_CALL))
    message = str(raised.value)
    assert f"the agent file %ProgramData%\\casdesired\\agent\\agent-{AGENT_SHA}.b64" in message
    assert "so nothing was run: something else changes files in that folder" in message
    assert lab.journal.count("cmdlet") == 0 and lab.open_shells == 0
    # This run's request file was removed; the agent went into the folder by move's rule.
    assert not any("request-" in path for path in stored(lab))


def test_an_agent_another_run_holds_open_is_used_and_this_runs_upload_removed(
    lab: Lab,
) -> None:
    # Two first runs at once: the other one put the agent in place and its bootstrap holds the
    # file open, so this run's move is refused (cmd.exe: "Access is denied."). Its upload is
    # removed, and its bootstrap checks and uses the file in place.
    org = organisation(lab)
    real_move = org.files.move_file

    def held(source: str, target: str) -> None:
        org.files.write_file(target, AGENT_TEXT, append=False)  # the other run's
        raise HostFileError("denied", target)

    org.files.move_file = held  # type: ignore[method-assign]
    client = file_client(lab)
    try:
        assert client.run(client.make_request(ONE_CALL)).results[0].ok
    finally:
        org.files.move_file = real_move  # type: ignore[method-assign]
    bootstraps = [e["exit_code"] for e in lab.journal.entries(["process"])]
    assert bootstraps == [files.NO_AGENT_FILE_EXIT, 0]
    assert sorted(stored(lab)) == [FOLDER, AGENT_FILE]  # no upload-… left behind
    lines = [str(e["command_line"]) for e in lab.journal.entries(["command"])]
    assert any(line.startswith('del /q "%ProgramData%\\casdesired\\agent\\upload-')
               for line in lines)


def test_a_request_file_changed_before_the_bootstrap_reads_it_runs_nothing(lab: Lab) -> None:
    client = file_client(lab)
    assert client.run(client.make_request(ONE_CALL)).results[0].ok
    cmdlets = lab.journal.count("cmdlet")
    org = organisation(lab)
    # Swap whatever this run writes with another request, as it lands (a race with the run).
    other = protocol.Request(invocations=(protocol.Invocation(
        "x", "Remove-ClientAccessArray", {"Identity": "outlook-hq.contoso.local"}),))
    _sha, other_text = files.request_payload(other)
    real_write = org.files.write_file

    def swap(path: str, text: str, *, append: bool) -> None:
        real_write(path, text, append=append)
        if "request-" in path and text:
            real_write(path, other_text, append=False)

    org.files.write_file = swap  # type: ignore[method-assign]
    with pytest.raises(AgentNotStarted) as raised:
        client.run(client.make_request(ONE_CALL))
    assert "the request file casdesired wrote" in str(raised.value)
    assert "(its SHA-256 differed), so nothing was run" in str(raised.value)
    assert lab.journal.count("cmdlet") == cmdlets  # nothing ran, Remove-... least of all
    assert not any("request-" in path for path in stored(lab))  # the bootstrap deleted it


@pytest.mark.parametrize(
    ("fault", "started"),
    [
        (WireFault(kind="drop", action="Command"), False),  # the request's echo
        (WireFault(kind="drop", action="Receive"), False),  # the echo's answer
        (WireFault(kind="wsman_fault", action="Command", after=1), False),  # the bootstrap's
        (WireFault(kind="drop", action="Receive", after=1), True),  # while the agent runs
    ],
)
def test_a_failure_before_the_bootstrap_started_is_not_started(
    lab: Lab, fault: WireFault, started: bool
) -> None:
    client = file_client(lab)
    assert client.run(client.make_request(ONE_CALL)).results[0].ok  # the agent is in place
    cmdlets = lab.journal.count("cmdlet")
    lab.faults.wire.append(fault)
    with pytest.raises(ConnectionFailed) as raised:
        client.run(client.make_request(ONE_CALL))
    assert isinstance(raised.value, AgentNotStarted) is not started
    if not started:
        assert lab.journal.count("cmdlet") == cmdlets
    assert PASSWORD not in str(raised.value) and lab.open_shells == 0


# --- powershell.exe 2.0's stdin, as the field reports it -------------------------------------
def test_a_hanging_stdin_fails_clearly_and_the_file_delivery_works(lab: Lab) -> None:
    organisation(lab).configure(powershell_stdin="hangs")
    client = AgentClient(target_of(lab, operation_timeout=1.0, read_timeout=3.0,
                                   start_timeout=2.0, command_timeout=20.0))
    with pytest.raises(ConnectionFailed) as raised:
        client.run(client.make_request(ONE_CALL))
    message = str(raised.value)
    assert message.startswith(f"the agent on {lab.url} did not start within 2 s: ")
    assert "powershell.exe never finished reading its standard input" in message
    assert "set connection.agent.delivery: file in the organisation file" in message
    (killed,) = lab.journal.entries(["process"])
    assert killed["outcome"] == "killed" and lab.open_shells == 0
    assert file_client(lab).run(client.make_request(ONE_CALL)).results[0].ok


def test_a_stdin_read_as_nothing_fails_clearly_and_the_file_delivery_works(lab: Lab) -> None:
    organisation(lab).configure(powershell_stdin="empty")
    client = AgentClient(target_of(lab))
    with pytest.raises(AgentNotStarted) as raised:
        client.run(client.make_request(ONE_CALL))
    assert str(raised.value).startswith(
        f"powershell.exe on {lab.url} read nothing of what casdesired sent on its standard "
        "input, so the agent did not run."
    )
    assert "set connection.agent.delivery: file" in str(raised.value)
    assert lab.journal.count("cmdlet") == 0
    assert file_client(lab).run(client.make_request(ONE_CALL)).results[0].ok


def test_a_slow_agent_is_not_taken_for_a_hanging_stdin(lab: Lab) -> None:
    # The bootstrap says it read stdin at once; the agent may then work far longer.
    from casdesired.lab.faults import CmdletFault

    lab.faults.cmdlets.append(CmdletFault("Get-ExchangeServer", fail=False, delay_seconds=3.0))
    client = AgentClient(target_of(lab, operation_timeout=1.0, read_timeout=3.0,
                                   start_timeout=1.0))
    assert client.run(client.make_request(ONE_CALL)).results[0].ok


# --- the organisation file chooses, through the real CLI -----------------------------------
def _set_agent(org: OrgDir, agent: str) -> None:
    path = org.path / "organisation.yaml"
    text = path.read_text().replace("  credentials:", f"  agent: {agent}\n  credentials:", 1)
    text = text.replace("operation_seconds: 120", "operation_seconds: 1")
    path.write_text(text)


@pytest.mark.parametrize("reading", ["hangs", "empty"])
def test_plan_with_a_broken_stdin_says_to_use_the_file_delivery_which_then_plans(
    org_dir: Callable[..., OrgDir], capsys: pytest.CaptureFixture[str], reading: str
) -> None:
    org = org_dir(password=PASSWORD)
    organisation(org.lab).configure(powershell_stdin=reading)
    _set_agent(org, "{delivery: stdin, start_timeout_seconds: 2}")
    code, out, err = cli(capsys, "plan", str(org.path))
    assert code == 1 and "set connection.agent.delivery: file" in err
    assert "Traceback" not in err and PASSWORD not in err + out
    path = org.path / "organisation.yaml"
    path.write_text(path.read_text().replace("delivery: stdin", "delivery: file"))
    code, out, err = cli(capsys, "plan", str(org.path))
    assert code == 0, err
    assert "create CAS array outlook-branch.contoso.local" in out
    assert org.lab.open_shells == 0


def test_an_unknown_delivery_is_a_validation_error_with_its_place(
    org_dir: Callable[..., OrgDir], capsys: pytest.CaptureFixture[str]
) -> None:
    org = org_dir(password=PASSWORD)
    _set_agent(org, "{delivery: smoke-signals}")
    code, out, err = cli(capsys, "validate", str(org.path))
    assert code == 1
    assert re.search(r"organisation\.yaml:\d+:\d+: error: connection\.agent\.delivery", out + err)

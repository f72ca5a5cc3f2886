"""casdesired within WinRM 2.0's quotas (Windows Server 2008 R2), and what it says at each.

It asks for no OperationTimeout over MaxTimeoutms (60 s), sends no request over
MaxEnvelopeSizekb (150 KB), reads 10,000 databases within MaxMemoryPerShellMB (150 MB); when a
host's quota stops it anyway (too many shells, too little memory, a lowered envelope size) the
message names the setting and the command that raises it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from casdesired.agent import protocol
from casdesired.agent.delivery import stdin as stdin_delivery
from casdesired.errors import CasdesiredError, ConnectionFailed, ProtocolError
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.process import ProcessResult
from casdesired.lab.server import Lab, LabCredentials
from casdesired.lab.wsman.limits import WinRMLimits
from casdesired.live.reader import read_live
from casdesired.transport import shell as agent_shell
from casdesired.transport.session import WinRMSession
from casdesired.transport.winrm import AgentClient

from .conftest import OrgDir, cli, target_of

PASSWORD = "Quota-S3cret-Value-5520"
NLB = ["BR-CAS01"]
RAISE_MEMORY = 'winrm set winrm/config/winrs @{MaxMemoryPerShellMB="1024"}'
RAISE_SHELLS = 'winrm set winrm/config/winrs @{MaxShellsPerUser="10"}'


@pytest.fixture
def seed_lab() -> Iterator[Callable[..., Lab]]:
    """``seed_lab(databases=N, **limits)``: the seed organisation (plus N databases in Branch)
    behind a lab with these WinRM limits (Windows Server 2008 R2's otherwise)."""
    started: list[Lab] = []

    def start(databases: int = 0, **limits: int) -> Lab:
        org = Organisation.from_seed()
        if databases:
            org.add_databases(databases, "Branch", "BR-DB-MANY-")
        lab = Lab(org, journal=org.journal, credentials=LabCredentials(password=PASSWORD),
                  limits=WinRMLimits(**limits)).start()
        started.append(lab)
        return lab

    yield start
    for lab in started:
        lab.stop()


def _fails(client: AgentClient, kind: type[CasdesiredError]) -> str:
    with pytest.raises(kind) as raised:
        read_live(client, nlb_hosts=NLB)
    message = str(raised.value)
    assert PASSWORD not in message and "Traceback" not in message
    return message


# MaxMemoryPerShellMB ------------------------------------------------------------------------
@pytest.mark.parametrize("delivery", ["stdin", "file"])
def test_ten_thousand_databases_are_read_within_the_default_memory_quota(
    seed_lab: Callable[..., Lab], delivery: str
) -> None:
    lab = seed_lab(databases=10_000 - 12)
    live = read_live(AgentClient(target_of(lab, delivery=delivery)), nlb_hosts=NLB)
    assert len(live.estate.databases) == 10_000
    # The file delivery's first run on a host finds no agent file first (exit code 4).
    *refused, ended = lab.journal.entries(["process"])
    assert [e["exit_code"] for e in refused] == ([4] if delivery == "file" else [])
    assert ended["outcome"] == "exited" and float(ended["memory_mb"]) < 150
    # The agent read its request either way: the memory model counts what the agent held.
    assert float(ended["memory_mb"]) > 60


def test_an_agent_out_of_memory_names_max_memory_per_shell_and_how_to_raise_it(
    seed_lab: Callable[..., Lab],
) -> None:
    lab = seed_lab(databases=10_000 - 12, max_memory_per_shell_mb=72)
    notices: list[str] = []
    message = _fails(AgentClient(target_of(lab), warn=notices.append), ProtocolError)
    assert message.startswith(f"the agent on {lab.url} ran out of memory and returned no result")
    assert "MaxMemoryPerShellMB, 150 MB on Windows Server 2008 R2" in message
    assert RAISE_MEMORY in message
    assert "System.OutOfMemoryException" in message  # PowerShell's own words, cleaned
    assert "CLIXML" not in message
    assert lab.open_shells == 0 and notices == []


@pytest.mark.parametrize("stderr", [
    "The paging file is too small for this operation to complete.\r\n",
    "Insufficient memory to continue the execution of the program.\r\n",
])
def test_windows_own_allocation_failures_are_recognised_too(
    scripted_lab: Callable[..., Lab], stderr: str
) -> None:
    def dies(_script: str, _stdin: bytes) -> ProcessResult:
        return ProcessResult(stderr=stderr, exit_code=-1073741801)

    lab = scripted_lab(dies, credentials=LabCredentials(password=PASSWORD))
    message = _fails(AgentClient(target_of(lab)), ProtocolError)
    assert "ran out of memory" in message and RAISE_MEMORY in message
    assert stderr.strip() in message


def test_plan_says_in_one_line_what_to_raise(
    org_dir: Callable[..., OrgDir], capsys: pytest.CaptureFixture[str]
) -> None:
    org = org_dir(password=PASSWORD, limits=WinRMLimits(max_memory_per_shell_mb=60))
    code, out, err = cli(capsys, "plan", str(org.path))
    assert code == 1 and out == ""
    assert "ran out of memory" in err and RAISE_MEMORY in err
    assert "Traceback" not in err and PASSWORD not in err


# MaxShellsPerUser ---------------------------------------------------------------------------
def test_too_many_shells_names_the_quota_leaked_shells_and_how_to_clean_or_raise(
    seed_lab: Callable[..., Lab],
) -> None:
    lab = seed_lab()
    other_tool = WinRMSession(target_of(lab))  # another tool of the same account, shells open
    leaked = [other_tool.proto.open_shell() for _ in range(5)]
    notices: list[str] = []
    message = _fails(AgentClient(target_of(lab), warn=notices.append), ConnectionFailed)
    assert message.startswith(f"the WinRM service at {lab.url} refused a new shell while "
                              "opening a shell: ")
    assert "(MaxShellsPerUser; 5 on Windows Server 2008 R2)" in message
    assert "WinRM said: The WS-Management service cannot process the request." in message
    assert "(WSManFault code 2150859173, 0x803381A5)." in message
    assert "idle timeout" in message and "Restart-Service WinRM" in message
    assert RAISE_SHELLS in message
    assert notices == []  # no shell of ours to close
    for shell in leaked:
        other_tool.proto.close_shell(shell, close_session=False)
    other_tool.close()
    assert len(read_live(AgentClient(target_of(lab)), nlb_hosts=NLB).estate.databases) == 12


# MaxTimeoutms -------------------------------------------------------------------------------
def test_the_client_asks_for_at_most_sixty_seconds_whatever_operation_seconds_says(
    seed_lab: Callable[..., Lab],
) -> None:
    lab = seed_lab()
    session = WinRMSession(target_of(lab, operation_timeout=120.0, read_timeout=130.0))
    sent: list[str] = []
    send = session.proto.transport.send_message

    def keep(message: str) -> bytes:
        sent.append(message)
        answer: bytes = send(message)
        return answer

    session.proto.transport.send_message = keep  # type: ignore[method-assign]
    shell = session.proto.open_shell()
    session.proto.close_shell(shell)
    assert sent and all("<w:OperationTimeout>PT60S</w:OperationTimeout>" in m for m in sent)
    assert session.timeouts[1] == 130.0  # the read timeout stays what was configured


# MaxEnvelopeSizekb --------------------------------------------------------------------------
def _large_request(client: AgentClient) -> protocol.Request:
    """Over 300 KB of stdin: far more than one 150 KB envelope."""
    filler = "x" * 4000
    invocations = tuple(
        protocol.Invocation(f"s{i}", "Get-ExchangeServer", {"Identity": f"HQ-CAS01{filler}"},
                            on_error="continue")
        for i in range(60)
    )
    return client.make_request(invocations)


def test_a_large_request_travels_in_sends_under_max_envelope_size(
    seed_lab: Callable[..., Lab],
) -> None:
    lab = seed_lab()
    client = AgentClient(target_of(lab))
    request = _large_request(client)
    assert len(stdin_delivery.encode_stdin("# casdesired-agent protocol 1", request)) > 300_000
    response = client.run(request)
    assert len(response.results) == 60
    sends = [e for e in lab.journal.entries(["wsman"]) if e["action"] == "Send"]
    assert len(sends) >= 5 and {e["status"] for e in sends} == {200}
    assert 413 not in {e["status"] for e in lab.journal.entries(["http"])}


def test_a_request_over_max_envelope_size_says_which_setting(
    seed_lab: Callable[..., Lab], monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = seed_lab()
    monkeypatch.setattr(agent_shell, "STDIN_CHUNK_BYTES", 200 * 1024)  # one Send too many KB
    client = AgentClient(target_of(lab))
    with pytest.raises(ConnectionFailed) as raised:
        client.run(_large_request(client))
    message = str(raised.value)
    assert "refused a request as too large (HTTP 413) while sending the request" in message
    assert "MaxEnvelopeSizekb (150 KB on Windows Server 2008 R2" in message
    assert 'winrm set winrm/config @{MaxEnvelopeSizekb="500"}' in message
    assert lab.open_shells == 0


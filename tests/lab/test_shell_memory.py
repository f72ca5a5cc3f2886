"""MaxMemoryPerShellMB: a shell's process over the quota dies as on Windows, by a model.

No WS-Man fault: the command ends with PowerShell's allocation error on stderr and no
response. The memory is the lab's estimate (casdesired.lab.exchange.memory): the base of
powershell.exe, the Exchange session it loads and what the agent holds and writes; so the same
quota passes a small organisation's read and fails a large one's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from casdesired.agent import framing
from casdesired.agent import protocol as agent_protocol
from casdesired.agent.delivery import stdin as stdin_delivery
from casdesired.importing.read import nlb_invocations
from casdesired.lab.exchange import Organisation
from casdesired.lab.exchange.memory import AgentMemoryModel
from casdesired.lab.exchange.testing import agent_script, run_request
from casdesired.lab.process import Logon, ProcessResult
from casdesired.lab.server import Lab
from casdesired.lab.wsman.limits import WinRMLimits
from casdesired.lab.wsman.shells import out_of_memory
from casdesired.live.invocations import DATABASES, read_invocations, read_modules

from .agent_wire import process_end, start_agent
from .conftest import protocol

NLB = ("br-cas01.contoso.local",)
READ = agent_protocol.Request(invocations=read_invocations(NLB), modules=read_modules(NLB))
LOCK_ONLY = agent_protocol.Request(
    invocations=(agent_protocol.Invocation("lock", "Get-CasdesiredLock"),),
    exchange=agent_protocol.ExchangeSession(mode="none"),
)


def organisation(databases: int = 0) -> Organisation:
    org = Organisation.from_seed()
    if databases:
        org.add_databases(databases, "Branch", "BR-DB-BIG-")
    return org


@pytest.fixture
def lab_of(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """``@pytest.mark.parametrize("lab_of", [(extra databases, MaxMemoryPerShellMB)])``."""
    databases, megabytes = request.param
    with Lab(organisation(databases), limits=WinRMLimits(max_memory_per_shell_mb=megabytes)) as lab:
        yield lab


def read_through_pywinrm(lab: Lab) -> tuple[bytes, bytes, int, dict[str, object]]:
    proto = protocol(lab)
    shell, command = start_agent(proto, READ, lab)
    out, err, code = proto.get_command_output(shell, command)
    proto.cleanup_command(shell, command)
    proto.close_shell(shell)
    return out, err, code, process_end(lab, command)


@pytest.mark.parametrize("lab_of", [(0, 60)], indirect=True)
def test_over_the_quota_the_process_dies_with_allocation_errors_and_no_fault(lab_of: Lab) -> None:
    out, err, code, ended = read_through_pywinrm(lab_of)  # no WSManFaultError: it completes
    assert code == 1
    assert framing.RESPONSE_BEGIN.encode() not in out
    assert err.startswith(b"#< CLIXML\r\n")
    assert b"Exception of type 'System.OutOfMemoryException' was thrown." in err
    assert b"FullyQualifiedErrorId : System.OutOfMemoryException" in err
    assert ended["outcome"] == "out of memory"
    assert float(str(ended["memory_mb"])) > 60
    assert lab_of.open_shells == 0  # the shell outlived its process until the client closed it


@pytest.mark.parametrize(("lab_of", "outcome"), [((0, 75), "exited"),
                                                 ((10_000 - 12, 75), "out of memory")],
                         indirect=["lab_of"], ids=["12 databases", "10,000 databases"])
def test_the_same_quota_passes_a_small_read_and_fails_a_large_one(
    lab_of: Lab, outcome: str
) -> None:
    out, _err, code, ended = read_through_pywinrm(lab_of)
    assert ended["outcome"] == outcome
    assert (code == 0) == (outcome == "exited")
    assert (framing.RESPONSE_BEGIN.encode() in out) == (outcome == "exited")


@pytest.mark.parametrize("lab_of", [(10_000 - 12, 150)], indirect=True)
def test_ten_thousand_databases_are_read_within_windows_2008_r2s_150_mb(lab_of: Lab) -> None:
    out, _err, code, ended = read_through_pywinrm(lab_of)
    assert code == 0, _err
    databases = framing.decode_response(out.decode()).result(DATABASES)
    assert databases is not None and len(databases.objects) == 10_000
    assert ended["outcome"] == "exited"
    assert 70 < float(str(ended["memory_mb"])) < 150  # room to spare, and not for free


def test_the_model_counts_the_session_the_agent_loads_and_what_it_holds() -> None:
    model, small, large = AgentMemoryModel(), organisation(), organisation(2000)
    script = stdin_delivery.BOOTSTRAP_SCRIPT

    def use(org: Organisation, request: agent_protocol.Request) -> float:
        stdin = stdin_delivery.encode_stdin(agent_script(), request)
        return model.estimate(script, stdin, run_request(org, request)).megabytes

    # The recommended remote /PowerShell session; the snap-in, in a logon that can delegate.
    read_small, read_large = use(small, READ), use(large, READ)
    lock_only = use(small, LOCK_ONLY)
    small.logon = Logon(small.logon.user, small.logon.password, "credssp")
    snapin = agent_protocol.ExchangeSession(mode="snapin")
    read_snapin = use(small, agent_protocol.Request(invocations=READ.invocations,
                                                    modules=READ.modules, exchange=snapin))
    assert lock_only < read_small < read_snapin  # no session < remote < snap-in
    assert read_small < read_large
    assert read_snapin - lock_only > 60  # the snap-in, the NLB module, a session to the node
    assert read_large - read_small > 2  # 2,000 databases more, held and serialised
    # A script that is not the agent costs the bare powershell.exe.
    assert model.estimate("Get-Date", b"", ProcessResult(stdout="Monday\r\n")).megabytes < 30


def test_the_model_counts_a_session_to_each_computer_a_fan_out_ran_on() -> None:
    # import's one request: the read, and NLB fanned out over every CAS server it finds.
    request = agent_protocol.Request(invocations=(*read_invocations(), *nlb_invocations()),
                                     modules=read_modules(NLB))
    stdin = stdin_delivery.encode_stdin(agent_script(), request)
    use = AgentMemoryModel().estimate(stdin_delivery.BOOTSTRAP_SCRIPT, stdin,
                                      run_request(organisation(), request))
    sessions = [name for name, _ in use.parts if name.startswith("PSSession to ")]
    assert sessions == [f"PSSession to {host}.contoso.local"
                        for host in ("br-cas01", "dr-cas01", "dr-cas02", "hq-cas01", "hq-cas02")]


@pytest.mark.parametrize("stdout", ["WARNING: slow\r\n<casdesired-response>gzip:H4sI",
                                    "WARNING: slow\r\n<casdesired-response>gzip:H4sI\r\n"])
def test_a_process_out_of_memory_keeps_what_it_wrote_before_its_last_output(stdout: str) -> None:
    died = out_of_memory(ProcessResult(stdout=stdout, exit_code=0))
    assert (died.stdout, died.exit_code) == ("WARNING: slow\r\n", 1)
    assert "System.OutOfMemoryException" in died.stderr

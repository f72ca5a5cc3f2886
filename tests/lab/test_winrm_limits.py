"""WinRM 2.0's quotas (Windows Server 2008 R2's defaults) as pywinrm meets them in the lab.

MaxEnvelopeSizekb 150 (a larger request: bare HTTP 413), MaxTimeoutms 60000 (a longer
OperationTimeout is clamped), MaxShellsPerUser 5 (the 6th Create: w:QuotaLimit 2150859173),
IdleTimeout 180000 (an idle shell is closed). Every one is a setting of the lab.
MaxMemoryPerShellMB has its own tests (test_shell_memory.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest
import requests
import winrm
from winrm.exceptions import WinRMOperationTimeoutError, WinRMTransportError, WSManFaultError

from casdesired.agent.framing import encode_command
from casdesired.lab.server import Lab
from casdesired.lab.wsman import shells
from casdesired.lab.wsman.limits import WinRMLimits

from .conftest import FakeOrganisation, Wire, protocol, run

WINDOWS_2008_R2 = {
    "MaxEnvelopeSizekb": 150,
    "MaxTimeoutms": 60000,
    "MaxShellsPerUser": 5,
    "MaxMemoryPerShellMB": 150,
    "IdleTimeout": 180000,
}
QUOTA_REASON = (
    "The WS-Management service cannot process the request. The maximum number of concurrent "
    "shells for this user has been exceeded. Close existing shells or raise the quota for this "
    "user. "
)
ECHO_STDIN = f"powershell -encodedcommand {encode_command('echo-stdin')}"


def control(lab: Lab, method: str, path: str, body: object = None) -> requests.Response:
    return requests.request(method, lab.control_url + path, json=body, timeout=5,
                            headers={"X-Lab-Token": lab.token}, proxies={"http": "", "https": ""})


def test_the_defaults_are_windows_server_2008_r2s(basic_lab: Lab) -> None:
    assert WinRMLimits().to_json() == WINDOWS_2008_R2
    assert control(basic_lab, "GET", "/limits").json() == WINDOWS_2008_R2


def test_limits_are_changed_by_windows_names_and_bad_ones_change_nothing(basic_lab: Lab) -> None:
    answer = control(basic_lab, "PUT", "/limits", {"maxshellsperuser": 30})
    assert answer.json()["MaxShellsPerUser"] == 30 and basic_lab.limits.max_shells_per_user == 30
    for bad in ({"MaxShells": 3}, {"MaxTimeoutms": 10}, {"MaxMemoryPerShellMB": "lots"},
                {"MaxShellsPerUser": 7, "IdleTimeout": True}):
        refused = control(basic_lab, "PUT", "/limits", bad)
        assert refused.status_code == 400, bad
    assert control(basic_lab, "GET", "/limits").json() == {**WINDOWS_2008_R2,
                                                           "MaxShellsPerUser": 30}


# MaxEnvelopeSizekb -------------------------------------------------------------------------
def test_a_request_over_max_envelope_size_is_refused_with_a_bare_413(
    organisation: FakeOrganisation, wire: Wire, connect: Callable[..., winrm.Protocol]
) -> None:
    with wire.lab(organisation) as lab:
        proto = connect(lab)
        shell = proto.open_shell()
        command = proto.run_command(shell, ECHO_STDIN)
        big = b"x" * (120 * 1024)  # 160 KB of base64 in one Send: over 150 KB
        with pytest.raises(WinRMTransportError) as caught:
            proto.send_command_input(shell, command, big, end=True)
        assert caught.value.code == 413
        assert "Bad HTTP response returned from server. Code 413" in str(caught.value)
        statuses = [e["status"] for e in lab.journal.entries(["http"])]
        assert statuses[-1] == 413
        assert [e["action"] for e in lab.journal.entries(["wsman"])] == ["Create", "Command"]
        # Nothing reached the command; the same data in Sends under the limit does.
        fresh = connect(lab)
        half = len(big) // 2
        fresh.send_command_input(shell, command, big[:half])
        fresh.send_command_input(shell, command, big[half:], end=True)
        assert fresh.get_command_output(shell, command)[0] == big
        fresh.close_shell(shell)


def test_a_raised_max_envelope_size_takes_the_larger_request(basic_lab: Lab) -> None:
    basic_lab.limits.update({"MaxEnvelopeSizekb": 500})
    proto = protocol(basic_lab)
    shell = proto.open_shell()
    command = proto.run_command(shell, ECHO_STDIN)
    proto.send_command_input(shell, command, b"y" * (120 * 1024), end=True)
    assert len(proto.get_command_output(shell, command)[0]) == 120 * 1024
    proto.close_shell(shell)


def test_responses_stay_under_max_envelope_size_whatever_the_client_offers(
    basic_lab: Lab, organisation: FakeOrganisation
) -> None:
    proto = protocol(basic_lab)
    answers: list[bytes] = []
    send = proto.transport.send_message

    def keep(message: str | bytes) -> bytes:
        # The client offers 1 MB envelopes (pywinrm always says 153600); Windows sends 150 KB.
        text = message.decode() if isinstance(message, bytes) else message
        offered = text.replace(">153600</w:MaxEnvelopeSize>", ">1048576</w:MaxEnvelopeSize>")
        assert offered != text
        answer: bytes = send(offered)
        answers.append(answer)
        return answer

    proto.transport.send_message = keep  # type: ignore[method-assign]
    out, _, code = run(proto, f"powershell -encodedcommand {encode_command('bytes 400000')}")
    assert (len(out), code) == (400000, 0)
    receives = [a for a in answers if b"ReceiveResponse</a:Action>" in a]
    assert len(receives) >= 3 and all(len(a) <= 150 * 1024 for a in receives)


# MaxTimeoutms -------------------------------------------------------------------------------
def test_an_operation_timeout_over_max_timeout_is_clamped(basic_lab: Lab) -> None:
    # The client asks the service to hold a Receive 5 s, and gives up reading after 2 s. A
    # service that honoured the 5 s would leave it with a read timeout; one whose MaxTimeoutms
    # is 500 ms answers "no output yet" (w:TimedOut) well before.
    basic_lab.limits.update({"MaxTimeoutms": 500})
    proto = protocol(basic_lab, operation_timeout_sec=5, read_timeout_sec=6)
    proto.transport.read_timeout_sec = 2  # type: ignore[attr-defined]
    shell = proto.open_shell()
    command = proto.run_command(shell, ECHO_STDIN)
    proto.send_command_input(shell, command, b"not yet", end=False)  # the command waits
    with pytest.raises(WinRMOperationTimeoutError):
        proto.get_command_output_raw(shell, command)
    receive = [e for e in basic_lab.journal.entries(["wsman"]) if e["action"] == "Receive"]
    assert [e["status"] for e in receive] == [500]
    proto.close_shell(shell)


# MaxShellsPerUser ---------------------------------------------------------------------------
@pytest.fixture
def five_open(basic_lab: Lab) -> Iterator[tuple[winrm.Protocol, list[str]]]:
    proto = protocol(basic_lab)
    opened = [proto.open_shell() for _ in range(5)]
    yield proto, opened
    for shell in opened:
        with contextlib.suppress(WSManFaultError):  # closed by the test already
            proto.close_shell(shell, close_session=False)


def test_the_sixth_shell_of_a_user_is_refused_with_windows_quota_fault(
    basic_lab: Lab, five_open: tuple[winrm.Protocol, list[str]]
) -> None:
    proto, opened = five_open
    with pytest.raises(WSManFaultError) as caught:
        proto.open_shell()
    fault = caught.value
    assert (fault.code, fault.fault_code, fault.fault_subcode) == (500, "s:Sender", "w:QuotaLimit")
    assert fault.wsman_fault_code == 2150859173
    assert fault.reason == QUOTA_REASON
    assert basic_lab.open_shells == 5
    # Closing one makes room for one, not more.
    proto.close_shell(opened.pop(), close_session=False)
    opened.append(proto.open_shell())
    with pytest.raises(WSManFaultError):
        proto.open_shell()


def test_a_raised_max_shells_per_user_takes_more(
    basic_lab: Lab, five_open: tuple[winrm.Protocol, list[str]]
) -> None:
    proto, opened = five_open
    basic_lab.limits.update({"MaxShellsPerUser": 6})
    opened.append(proto.open_shell())
    assert basic_lab.open_shells == 6


# IdleTimeout --------------------------------------------------------------------------------
def test_idle_shells_are_closed_after_idle_timeout_and_free_the_quota(
    basic_lab: Lab, five_open: tuple[winrm.Protocol, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proto, opened = five_open
    now = [shells.idle_clock()]
    monkeypatch.setattr(shells, "idle_clock", lambda: now[0])
    now[0] += 100
    used = opened[0]
    assert run_in(proto, used) == b"HQ-CAS01\r\n"  # a request: its idle time starts again
    now[0] += 100  # 200 s since the others' last request, 100 s since the used one's
    fresh = proto.open_shell()
    assert basic_lab.open_shells == 2  # the four idle ones closed, as WinRM closes them
    closed = [e["shell_id"] for e in basic_lab.journal.entries(["shell"])]
    assert sorted(closed) == sorted(opened[1:])
    with pytest.raises(WSManFaultError) as gone:
        proto.run_command(opened[1], "hostname")
    assert gone.value.wsman_fault_code == 2150858843
    opened[:] = [used, fresh]


def run_in(proto: winrm.Protocol, shell: str) -> bytes:
    command = proto.run_command(shell, "hostname")
    out: bytes = proto.get_command_output(shell, command)[0]
    proto.cleanup_command(shell, command)
    return out

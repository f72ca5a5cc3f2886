"""Each injected wire fault surfaces as the exception pywinrm users really get.

Every test runs over each wire (Basic over HTTP, NTLM-sealed over HTTP, Basic over HTTPS):
a fault answered through NTLM sealing or TLS must reach the client just as a cleartext one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests
import winrm
from winrm.exceptions import InvalidCredentialsError, WinRMTransportError, WSManFaultError

from casdesired.lab.faults import Faults, WireFault
from casdesired.lab.server import Lab

from .conftest import FakeOrganisation, Wire, observe_replies, run

Connect = Callable[..., winrm.Protocol]


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def lab(organisation: FakeOrganisation, faults: Faults, wire: Wire) -> Iterator[Lab]:
    with wire.lab(organisation, faults=faults) as running:
        yield running


def test_http500_is_a_transport_error(lab: Lab, faults: Faults, connect: Connect) -> None:
    faults.wire.append(WireFault("http500", action="Create"))
    with pytest.raises(WinRMTransportError) as caught:
        connect(lab).open_shell()
    assert caught.value.code == 500
    assert "Bad HTTP response returned from server. Code 500" in str(caught.value)
    assert run(connect(lab), "hostname")[2] == 0  # spent after one request


def test_wsman_fault_is_a_wsman_fault_error(lab: Lab, faults: Faults, connect: Connect) -> None:
    faults.wire.append(WireFault("wsman_fault", action="Command", wsman_code=2150858770,
                                 message="Injected by the test."))
    proto = connect(lab)
    shell = proto.open_shell()
    with pytest.raises(WSManFaultError) as caught:
        proto.run_command(shell, "hostname")
    assert caught.value.code == 500
    assert caught.value.wsman_fault_code == 2150858770
    assert caught.value.reason == "Injected by the test."
    # the fault is spent and the shell (and, sealed, the NTLM sequence) still works
    assert proto.get_command_output(shell, proto.run_command(shell, "hostname"))[2] == 0


def test_drop_is_a_connection_error(lab: Lab, faults: Faults, connect: Connect) -> None:
    faults.wire.append(WireFault("drop", action="Receive"))
    proto = connect(lab)
    shell = proto.open_shell()
    command = proto.run_command(shell, "hostname")
    with pytest.raises(requests.exceptions.ConnectionError):
        proto.get_command_output(shell, command)


def test_hang_is_a_read_timeout_and_ends_quickly(
    lab: Lab, faults: Faults, connect: Connect
) -> None:
    faults.wire.append(WireFault("hang", action="Create"))
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        connect(lab, answered=False, operation_timeout_sec=1, read_timeout_sec=2).open_shell()
    assert time.monotonic() - started < 5
    assert run(connect(lab), "hostname")[2] == 0


def test_401_refuses_one_operation_as_windows_does(
    lab: Lab, faults: Faults, wire: Wire, connect: Connect
) -> None:
    faults.wire.append(WireFault("401", action="Receive"))
    proto = connect(lab)
    replies = observe_replies(proto)
    shell = proto.open_shell()
    command = proto.run_command(shell, "hostname")
    with pytest.raises((InvalidCredentialsError, WinRMTransportError)) as caught:
        proto.get_command_output(shell, command)
    if wire.sealed:
        # requests_ntlm authenticates anew and re-sends the message sealed with the old keys,
        # which the service cannot open: pywinrm reports that answer, not the 401.
        assert isinstance(caught.value, WinRMTransportError)
    else:
        assert isinstance(caught.value, InvalidCredentialsError)
    # The Receive's exchange: its 401 first (then, sealed, requests_ntlm's handshake and re-send).
    refusal = [*replies[-1].history, replies[-1]][0]
    assert refusal.status_code == 401
    assert refusal.raw.version == 11 and refusal.reason == ""  # "HTTP/1.1 401 ", no phrase
    expected = ["Negotiate", "Kerberos"] if wire.auth == "ntlm" else ['Basic realm="WSMAN"']
    assert refusal.raw.headers.getlist("WWW-Authenticate") == expected
    assert refusal.headers["Connection"] == "close"
    hit = [e for e in lab.journal.entries(["wsman"]) if e.get("fault") == "401"]
    assert [e["action"] for e in hit] == ["Receive"]
    # Spent after one operation. The shell is not tied to the refused connection: a freshly
    # authenticated client closes it, as a client that cleans up after a failure must.
    assert lab.open_shells == 1
    connect(lab).close_shell(shell)
    assert lab.open_shells == 0
    assert run(connect(lab), "hostname")[2] == 0


def test_fault_after_and_times(lab: Lab, faults: Faults, connect: Connect) -> None:
    faults.wire.append(WireFault("http500", action="Create", after=1, times=1))
    proto = connect(lab)
    proto.close_shell(proto.open_shell(), close_session=False)
    with pytest.raises(WinRMTransportError):
        proto.open_shell()
    proto.open_shell()


def test_latency_is_added_to_every_request(lab: Lab, faults: Faults, connect: Connect) -> None:
    proto = connect(lab)
    run(proto, "hostname")
    faults.update({"latency_ms": 150})
    started = time.monotonic()
    run(proto, "hostname")  # five WS-Man requests
    assert time.monotonic() - started >= 0.75


def test_stop_releases_a_hung_request(
    organisation: FakeOrganisation, wire: Wire, connect: Connect
) -> None:
    lab = wire.lab(organisation, faults=Faults(wire=[WireFault("hang")])).start()
    try:
        proto = connect(lab, answered=False, operation_timeout_sec=20, read_timeout_sec=30)
        errors: list[BaseException] = []

        def call() -> None:
            try:
                proto.open_shell()
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        lab.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the hung request outlived the lab's stop"
        assert time.monotonic() - started < 5
    finally:
        lab.stop()  # also when connecting or a wait failed (stop is idempotent)
    assert errors and isinstance(errors[0], requests.exceptions.ConnectionError)

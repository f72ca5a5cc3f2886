"""Each injected wire fault surfaces as the exception pywinrm users really get."""

from __future__ import annotations

import time

import pytest
import requests
from winrm.exceptions import WinRMTransportError, WSManFaultError

from casdesired.lab.faults import Faults, WireFault
from casdesired.lab.server import Lab

from .conftest import FakeOrganisation, protocol, run


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def lab(organisation: FakeOrganisation, faults: Faults) -> Lab:
    with Lab(organisation, auth="basic", faults=faults) as running:
        yield running  # type: ignore[misc]


def test_http500_is_a_transport_error(lab: Lab, faults: Faults) -> None:
    faults.wire.append(WireFault("http500", action="Create"))
    with pytest.raises(WinRMTransportError) as caught:
        protocol(lab).open_shell()
    assert caught.value.code == 500
    assert "Bad HTTP response returned from server. Code 500" in str(caught.value)
    assert run(protocol(lab), "hostname")[2] == 0  # spent after one request


def test_wsman_fault_is_a_wsman_fault_error(lab: Lab, faults: Faults) -> None:
    faults.wire.append(WireFault("wsman_fault", action="Command", wsman_code=2150858770,
                                 message="Injected by the test."))
    proto = protocol(lab)
    shell = proto.open_shell()
    with pytest.raises(WSManFaultError) as caught:
        proto.run_command(shell, "hostname")
    assert caught.value.wsman_fault_code == 2150858770
    assert caught.value.reason == "Injected by the test."


def test_drop_is_a_connection_error(lab: Lab, faults: Faults) -> None:
    faults.wire.append(WireFault("drop", action="Receive"))
    proto = protocol(lab)
    shell = proto.open_shell()
    command = proto.run_command(shell, "hostname")
    with pytest.raises(requests.exceptions.ConnectionError):
        proto.get_command_output(shell, command)


def test_hang_is_a_read_timeout_and_ends_quickly(lab: Lab, faults: Faults) -> None:
    faults.wire.append(WireFault("hang", action="Create"))
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        protocol(lab, operation_timeout_sec=1, read_timeout_sec=2).open_shell()
    assert time.monotonic() - started < 5
    assert run(protocol(lab), "hostname")[2] == 0


def test_fault_after_and_times(lab: Lab, faults: Faults) -> None:
    faults.wire.append(WireFault("http500", action="Create", after=1, times=1))
    proto = protocol(lab)
    proto.close_shell(proto.open_shell(), close_session=False)
    with pytest.raises(WinRMTransportError):
        proto.open_shell()
    proto.open_shell()


def test_latency_is_added_to_every_request(lab: Lab, faults: Faults) -> None:
    proto = protocol(lab)
    run(proto, "hostname")
    faults.update({"latency_ms": 150})
    started = time.monotonic()
    run(proto, "hostname")  # five WS-Man requests
    assert time.monotonic() - started >= 0.75


def test_stop_releases_a_hung_request(organisation: FakeOrganisation) -> None:
    faults = Faults(wire=[WireFault("hang")])
    lab = Lab(organisation, auth="basic", faults=faults).start()
    import threading

    errors: list[BaseException] = []

    def call() -> None:
        try:
            protocol(lab, operation_timeout_sec=20, read_timeout_sec=30).open_shell()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    lab.stop()
    thread.join(timeout=10)
    assert time.monotonic() - started < 5
    assert errors and isinstance(errors[0], requests.exceptions.ConnectionError)

"""Authentication as pywinrm meets it: Basic, NTLM, NTLM with message encryption."""

from __future__ import annotations

import pytest
import requests
from winrm.exceptions import InvalidCredentialsError

from casdesired.lab.faults import Faults
from casdesired.lab.server import Lab, LabCredentials

from .conftest import FakeOrganisation, protocol, run


def test_basic_with_the_right_password(basic_lab: Lab) -> None:
    assert run(protocol(basic_lab), "hostname")[2] == 0


def test_basic_username_without_domain_is_accepted(basic_lab: Lab) -> None:
    assert run(protocol(basic_lab, username="casadmin"), "hostname")[2] == 0


def test_basic_with_a_wrong_password_is_rejected(basic_lab: Lab) -> None:
    with pytest.raises(InvalidCredentialsError):
        protocol(basic_lab, password="wrong").open_shell()
    assert basic_lab.open_shells == 0


def test_basic_with_a_wrong_user_is_rejected(basic_lab: Lab) -> None:
    with pytest.raises(InvalidCredentialsError):
        protocol(basic_lab, username="CONTOSO\\someone").open_shell()


def test_401_advertises_the_enabled_methods_as_windows_does(
    basic_lab: Lab, ntlm_lab: Lab
) -> None:
    answer = requests.post(basic_lab.url, data=b"<x/>", timeout=5)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="WSMAN"'
    answer = requests.post(ntlm_lab.url, data=b"<x/>", timeout=5)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Negotiate"


def test_ntlm_with_encryption_over_http(ntlm_lab: Lab) -> None:
    proto = protocol(ntlm_lab, message_encryption="always")
    assert run(proto, "echo", ("sealed",)) == (b"sealed\r\n", b"", 0)
    # every WS-Man body travelled sealed: no SOAP in the clear after the handshake
    assert proto.transport.encryption is not None


def test_ntlm_without_encryption(ntlm_lab: Lab) -> None:
    proto = protocol(ntlm_lab, message_encryption="never")
    assert run(proto, "hostname")[0] == b"HQ-CAS01\r\n"
    assert proto.transport.encryption is None


def test_ntlm_authenticates_the_connection_once(ntlm_lab: Lab) -> None:
    proto = protocol(ntlm_lab)
    run(proto, "hostname")
    statuses = [e["status"] for e in ntlm_lab.journal.entries(["http"])]
    # one handshake (two 401s), then 1 blank POST + 5 operations all 200 on that connection
    assert statuses.count(401) == 2
    assert statuses.count(200) == 6


def test_ntlm_with_a_wrong_password_is_rejected(ntlm_lab: Lab) -> None:
    with pytest.raises(InvalidCredentialsError):
        protocol(ntlm_lab, password="wrong", message_encryption="never").open_shell()
    with pytest.raises(InvalidCredentialsError):
        protocol(ntlm_lab, password="wrong").open_shell()


def test_two_labs_keep_their_own_ntlm_passwords(organisation: FakeOrganisation) -> None:
    first = Lab(organisation, credentials=LabCredentials(password="First-Pa55"))
    second = Lab(organisation, credentials=LabCredentials(password="Second-Pa55"))
    with first, second:
        assert run(protocol(first), "hostname")[2] == 0
        assert run(protocol(second), "hostname")[2] == 0
        with pytest.raises(InvalidCredentialsError):
            protocol(second, password="First-Pa55").open_shell()


def test_rejected_credentials_fault(organisation: FakeOrganisation) -> None:
    faults = Faults(reject_credentials=True)
    with Lab(organisation, auth="basic", faults=faults) as lab:
        with pytest.raises(InvalidCredentialsError):
            protocol(lab).open_shell()
        faults.update({"reject_credentials": False})
        assert run(protocol(lab), "hostname")[2] == 0


def test_credentials_hide_the_password_in_repr() -> None:
    credentials = LabCredentials(password="S3cret-value")
    assert "S3cret-value" not in repr(credentials)
    assert LabCredentials().password != LabCredentials().password

"""Authentication as pywinrm meets it: Basic, NTLM, NTLM with message encryption, and the
service's AllowUnencrypted=false (the lab's default, as on Windows)."""

from __future__ import annotations

import pytest
import requests
from winrm.exceptions import InvalidCredentialsError

from casdesired.agent import protocol as agent_protocol
from casdesired.errors import ConnectionFailed
from casdesired.lab.faults import Faults
from casdesired.lab.server import Lab, LabCredentials
from casdesired.lab.wsman.handler import UNENCRYPTED_REFUSED
from casdesired.transport.winrm import AgentClient, WinRMTarget

from .conftest import (
    SEALED_PROTOCOL,
    WIRES,
    FakeOrganisation,
    assert_wire,
    observe_replies,
    protocol,
    run,
)

ONE_CALL = (agent_protocol.Invocation("servers", "Get-ExchangeServer", properties=("Name",)),)


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


def _refusal(answer: requests.Response) -> tuple[int, str, list[str], str | None]:
    """(status, reason phrase, each WWW-Authenticate header, Connection) as on the wire."""
    return (answer.status_code, answer.reason, answer.raw.headers.getlist("WWW-Authenticate"),
            answer.headers.get("Connection"))


def test_401_advertises_the_enabled_methods_as_windows_does(
    basic_lab: Lab, ntlm_lab: Lab
) -> None:
    # As a Windows capture shows it: "HTTP/1.1 401 " with no reason phrase, one header per
    # method the service has enabled, and the connection closed.
    answer = requests.post(basic_lab.url, data=b"<x/>", timeout=5)
    assert _refusal(answer) == (401, "", ['Basic realm="WSMAN"'], "close")
    # A domain member with WinRM's default methods: Negotiate and Kerberos, no Basic.
    answer = requests.post(ntlm_lab.url, data=b"<x/>", timeout=5)
    assert _refusal(answer) == (401, "", ["Negotiate", "Kerberos"], "close")


def test_a_refused_password_is_the_same_401_and_closes_the_connection(
    basic_lab: Lab, ntlm_lab: Lab
) -> None:
    wrong = requests.post(basic_lab.url, data=b"<x/>", timeout=5, auth=("casadmin", "wrong"))
    assert _refusal(wrong) == (401, "", ['Basic realm="WSMAN"'], "close")
    proto = protocol(ntlm_lab, password="wrong")
    replies = observe_replies(proto)
    with pytest.raises(InvalidCredentialsError):
        proto.open_shell()
    refused = [*replies[-1].history, replies[-1]] if replies else []
    # requests_ntlm's exchange: the anonymous refusal, the challenge, the final refusal.
    assert [r.status_code for r in refused] == [401, 401, 401]
    assert _refusal(refused[0]) == (401, "", ["Negotiate", "Kerberos"], "close")
    assert _refusal(refused[2]) == (401, "", ["Negotiate", "Kerberos"], "close")


def test_the_ntlm_challenge_keeps_the_connection_it_authenticates(ntlm_lab: Lab) -> None:
    # NTLM authenticates the connection: the challenge must not close it, or the client's
    # AUTHENTICATE would arrive on a connection that never saw the NEGOTIATE.
    proto = protocol(ntlm_lab)
    replies = observe_replies(proto)
    run(proto, "hostname")
    anonymous, challenge = replies[0].history
    assert _refusal(anonymous) == (401, "", ["Negotiate", "Kerberos"], "close")
    status, phrase, (offered,), connection = _refusal(challenge)
    assert (status, phrase, connection) == (401, "", None)
    assert offered.startswith("Negotiate TlRMTVNTUAACAAAA")  # an NTLM CHALLENGE message


def test_ntlm_with_encryption_over_http(ntlm_lab: Lab) -> None:
    proto = protocol(ntlm_lab, message_encryption="always")
    replies = observe_replies(proto)
    assert run(proto, "echo", ("sealed",)) == (b"sealed\r\n", b"", 0)
    # On the wire, not as pywinrm reports it (it would accept a cleartext reply silently):
    # the blank POST that ends the handshake, then five operations sealed both ways.
    assert [r.status_code for r in replies] == [200] * 6
    assert replies[0].content == b""
    for reply in replies[1:]:
        for headers in (reply.headers, reply.request.headers):
            assert headers["Content-Type"].startswith("multipart/encrypted;")
            assert SEALED_PROTOCOL in headers["Content-Type"]
        assert b"Envelope" not in reply.content  # no SOAP in the clear
    assert_wire(WIRES[1], replies)


def test_ntlm_without_encryption_is_refused_as_windows_refuses_it(
    ntlm_lab: Lab, organisation: FakeOrganisation
) -> None:
    # AllowUnencrypted=false (Windows' default): NTLM succeeds, the cleartext message it
    # carried does not; pywinrm shows that 401 as rejected credentials.
    with pytest.raises(InvalidCredentialsError):
        protocol(ntlm_lab, message_encryption="never").open_shell()
    assert ntlm_lab.open_shells == 0
    refused = [e for e in ntlm_lab.journal.entries(["http"]) if e.get("reason")]
    assert refused and all(e["status"] == 401 for e in refused)
    assert {e["reason"] for e in refused} == {UNENCRYPTED_REFUSED}
    assert ntlm_lab.journal.entries(["wsman"]) == []  # nothing reached the service


def test_ntlm_cleartext_on_an_authenticated_connection_is_refused(ntlm_lab: Lab) -> None:
    proto = protocol(ntlm_lab, message_encryption="always")
    shell = proto.open_shell()
    proto.transport.encryption = None  # the same authenticated session, now in the clear
    with pytest.raises(InvalidCredentialsError):
        proto.run_command(shell, "hostname")
    assert [e["action"] for e in ntlm_lab.journal.entries(["wsman"])] == ["Create"]


def test_ntlm_without_encryption_where_the_lab_allows_unencrypted(
    organisation: FakeOrganisation,
) -> None:
    with Lab(organisation, auth="ntlm", allow_unencrypted=True) as lab:
        proto = protocol(lab, message_encryption="never")
        replies = observe_replies(proto)
        assert run(proto, "hostname")[0] == b"HQ-CAS01\r\n"
    assert proto.transport.encryption is None
    assert all(r.headers["Content-Type"].startswith("application/soap+xml") for r in replies)


def test_basic_over_http_is_refused_even_with_the_right_password(
    organisation: FakeOrganisation,
) -> None:
    # Windows refuses Basic over HTTP unless AllowUnencrypted=true: the classic trap.
    with Lab(organisation, auth="basic") as lab:
        with pytest.raises(InvalidCredentialsError):
            protocol(lab).open_shell()
        assert [e.get("reason") for e in lab.journal.entries(["http"])] == [UNENCRYPTED_REFUSED]
        assert lab.journal.entries(["wsman"]) == []
        # ... and casdesired's client names that cause among the usual ones
        target = WinRMTarget(url=lab.url, transport="basic", username=lab.credentials.username,
                             password=lab.credentials.password, proxy=None)
        with pytest.raises(ConnectionFailed) as caught:
            client = AgentClient(target)
            client.run(client.make_request(ONE_CALL))
    message = str(caught.value)
    assert "rejected the credentials (basic authentication)" in message
    assert "Basic over HTTP needs AllowUnencrypted=true" in message
    assert lab.credentials.password not in message


def test_basic_over_https_needs_no_allow_unencrypted(organisation: FakeOrganisation) -> None:
    with Lab(organisation, auth="basic", tls=True) as lab:
        assert not lab.allow_unencrypted
        assert run(protocol(lab), "hostname")[2] == 0


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
    with Lab(organisation, auth="basic", faults=faults, allow_unencrypted=True) as lab:
        with pytest.raises(InvalidCredentialsError):
            protocol(lab).open_shell()
        faults.update({"reject_credentials": False})
        assert run(protocol(lab), "hostname")[2] == 0


def test_credentials_hide_the_password_in_repr() -> None:
    credentials = LabCredentials(password="S3cret-value")
    assert "S3cret-value" not in repr(credentials)
    assert LabCredentials().password != LabCredentials().password

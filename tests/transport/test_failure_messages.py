"""Messages that say what happened, so the operator does not go looking in the wrong place.

A refusal in the middle of a run is not a wrong password, nor a URL that is not WinRM; a
certificate that does not name the URL's IP address is not an untrusted CA.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from casdesired.errors import ConnectionFailed
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import WireFault
from casdesired.lab.server import Lab, LabCredentials
from casdesired.transport.winrm import AgentClient

from .conftest import target_of

PASSWORD = "Msg-S3cret-2210"
WIRES = {
    # casdesired's default: NTLM, messages sealed over HTTP. pywinrm reports a 400 here: the
    # message it re-sends after re-authenticating is sealed with the old keys.
    "ntlm-sealed-http": {"auth": "ntlm"},
    "basic-https": {"auth": "basic", "tls": True},
}


@pytest.fixture(params=list(WIRES), ids=list(WIRES))
def lab(request: pytest.FixtureRequest, scripted_lab: Callable[..., Lab]) -> Lab:
    options = WIRES[request.param]
    return scripted_lab(credentials=LabCredentials(password=PASSWORD), **options)


def _fails(lab: Lab, **changes: object) -> str:
    client = AgentClient(target_of(lab, operation_timeout=1.0, read_timeout=2.0, **changes))
    with pytest.raises(ConnectionFailed) as raised:
        client.run(client.make_request(()))
    message = str(raised.value)
    assert PASSWORD not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize(
    ("action", "step"),
    [("Receive", "reading the agent's output"), ("Send", "sending the request"),
     ("Command", "starting the agent")],
)
def test_a_401_after_authenticating_says_so_and_not_wrong_password_or_wrong_url(
    lab: Lab, action: str, step: str
) -> None:
    lab.faults.wire.append(WireFault("401", action=action))
    message = _fails(lab)
    assert message.startswith(
        f"the WinRM service at {lab.url} refused the request with HTTP 401 while {step}, after "
        f"the connection had authenticated ({lab.auth} authentication). The session was reset "
        "on the host"
    )
    assert "credentials stopped being valid meanwhile" in message
    assert "HTTP 400" not in message and "Check that the URL" not in message
    assert "user name or password is wrong" not in message
    assert lab.open_shells == 0


def test_credentials_refused_from_the_start_are_still_the_credentials(lab: Lab) -> None:
    message = _fails(lab, password="Not-" + PASSWORD)
    assert f"rejected the credentials ({lab.auth} authentication) while opening a shell" in message
    assert "user name or password is wrong" in message
    assert "after the connection had authenticated" not in message
    assert lab.open_shells == 0


def test_a_bare_http_error_mid_run_does_not_blame_the_url(lab: Lab) -> None:
    lab.faults.wire.append(WireFault("http500", action="Receive"))
    message = _fails(lab)
    assert "answered HTTP 500 while reading the agent's output, without a WS-Management " \
        "fault, after the steps before it had worked" in message
    assert "WinRM event log" in message and "Check that the URL" not in message
    assert lab.open_shells == 0


def test_a_bare_http_error_on_the_first_step_points_at_the_url(lab: Lab) -> None:
    lab.faults.wire.append(WireFault("http500", action="Create"))
    message = _fails(lab)
    assert "answered HTTP 500 while opening a shell, without a WS-Management fault. " \
        "Check that the URL is the WinRM listener" in message


# --- TLS names ------------------------------------------------------------------------------


@pytest.fixture
def tls_lab_on_127_0_0_2() -> Iterator[Lab]:
    """An HTTPS lab reached at 127.0.0.2, an address its certificate does not name (it names
    localhost, 127.0.0.1 and ::1); the CA is trusted, so only the name can fail."""
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
    except OSError:
        pytest.skip("127.0.0.2 is not a loopback address here")
    with Lab(Organisation.from_seed(), host="127.0.0.2", tls=True, auth="basic",
             credentials=LabCredentials(password=PASSWORD)) as lab:
        yield lab


def test_a_certificate_without_the_urls_ip_address_says_so(tls_lab_on_127_0_0_2: Lab) -> None:
    lab = tls_lab_on_127_0_0_2
    message = _fails(lab)
    assert message.startswith(
        f"TLS verification failed for {lab.url}: its certificate does not name the IP "
        "address 127.0.0.2 in the URL."
    )
    assert "not signed by a CA" not in message and "ca_bundle" not in message
    assert "subject alternative names" in message
    assert lab.open_shells == 0


def test_a_certificate_without_the_urls_host_name_says_so(
    tls_lab_on_127_0_0_2: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = tls_lab_on_127_0_0_2
    real = socket.getaddrinfo

    def cas99_is_the_lab(host: object, *args: object, **kwargs: object) -> object:
        return real("127.0.0.2" if host == "cas99.contoso.local" else host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", cas99_is_the_lab)
    url = lab.url.replace("127.0.0.2", "cas99.contoso.local")
    message = _fails(lab, url=url)
    assert message.startswith(
        f"TLS verification failed for {url}: its certificate does not name the host "
        "cas99.contoso.local in the URL."
    )
    assert "not signed by a CA" not in message
